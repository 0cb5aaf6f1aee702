"""botocore's models kept as one archive in the bundle, not ~2,000 files.

Every file in the bundle is created in /tmp at every cold start, and creating
many small files is slow on Lambda's disk-backed /tmp. The bench's real
function (powertools + boto3) unpacked 2,135 files, 1,977 of them botocore's
`data/` folder (one folder per service and API version, with its model,
endpoint rules, paginators, waiters): 2.1 s of INIT against awslambdaric's
0.26 s on this machine, while GNU tar put the same tree in a tmpfs in 0.09 s.
boto3 is the most common dependency of Lambda functions, and any of its
~450 services may be asked for, so none can be left out.

So the build writes that folder into one zip, `botocore/data.zip` (members
stored, sorted, with fixed times: the same botocore gives the same bytes);
build/static.py keeps it out of staticx's archive and adds it to the static
bootstrap as an ELF section of its own (as staticx keeps its archive), read
there in place: a cold start neither unpacks nor writes it. The run-time hook
build/pyinstaller_hooks/rthooks/pyi_rth_botocore_data.py, which PyInstaller
adds whenever botocore is bundled (rthooks.dat beside it), lets botocore's
own Loader read it. Before the archive replaces the folder the
build checks it with the botocore being bundled, in a fresh interpreter: the
same services listed as from the folder, two clients created (no network
needed), the models read from the archive. A botocore whose loader the hook
cannot serve, or `STATICLAMBDA_BOTOCORE_FILES=1` (code of yours that opens
botocore's data files by path), keeps the folder as files, and the build says so.

Called from build/bootstrap.spec on PyInstaller's Analysis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATA_FOLDER = "botocore/data/"  # the folder's destination in the bundle
ARCHIVE = "botocore/data.zip"  # the one file that replaces it (the hook's ARCHIVE)
RUNTIME_HOOK = Path(__file__).parent / "pyinstaller_hooks" / "rthooks" / "pyi_rth_botocore_data.py"
AS_FILES = "STATICLAMBDA_BOTOCORE_FILES"
# The clients the check creates: the real function's own and one more.
CHECKED_SERVICES = ("s3", "dynamodb")
# The static bootstrap's ELF section holding the archive (build/static.py adds
# it; the run-time hook reads it there in place: its SECTION).
SECTION = ".staticlambda.botocore"
# The date zip's format starts at; no build clock in the archive.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_archive(members: Sequence[tuple[str, Path]], out: Path) -> None:
    """``members``: (name in the archive, file) pairs. Stored, not deflated:
    the models are mostly `.json.gz` already, a read is then a plain read,
    and the Lambda zip deflates the whole bootstrap anyway."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, source in sorted(members):
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever the build machine
            archive.writestr(info, source.read_bytes())


CHECK = """
import importlib.util, sys
hook_path, archive_path, *services = sys.argv[1:]
spec = importlib.util.spec_from_file_location("pyi_rth_botocore_data", hook_path)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
hook.serve_from_archive(hook.Location(archive_path))
import botocore.loaders, botocore.session
session = botocore.session.get_session()
listed = session.get_available_services()
print(len(listed))
for service in services:
    client = session.create_client(service, region_name="us-east-1",
                                   aws_access_key_id="x", aws_secret_access_key="x")
    assert client.meta.service_model.operation_names, service
archive = botocore.loaders.os._archive
assert archive.reads > 0, "nothing was read from the archive"
"""


def check_archive(archive: Path, botocore_dir: Path, expected_services: int) -> str | None:
    """None when botocore (from ``botocore_dir``) reads its models from the
    archive as it did from the folder; else why not."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(botocore_dir.parent), environ.get("PYTHONPATH", "")) if p
    )
    services = [s for s in CHECKED_SERVICES if (botocore_dir / "data" / s).is_dir()]
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(RUNTIME_HOOK), str(archive), *services],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"the check exited {done.returncode}"
    listed = int(done.stdout.split()[0])
    if listed != expected_services:
        return f"botocore listed {listed} services from the archive, {expected_services} expected"
    return None


def services_in(names: Sequence[str]) -> int:
    """The services botocore lists from a data folder: those with a service model."""
    return len({n.split("/")[0] for n in names if n.count("/") == 2 and "/service-2." in n})


def pack_models(analysis: Any, workpath: str, environ: Mapping[str, str]) -> str:
    """Replace botocore's data folder in ``analysis.datas`` by its archive;
    returns a line for the build's output ('' when botocore is not bundled)."""
    members = [
        (dest[len(DATA_FOLDER) :], Path(source))
        for dest, source, _kind in analysis.datas
        if dest.replace(os.sep, "/").startswith(DATA_FOLDER)
    ]
    if not members:
        return ""
    if environ.get(AS_FILES) == "1":
        return f"botocore models: {len(members)} files, as {AS_FILES}=1 asks"
    # .../botocore/data/<name>: the botocore being bundled
    name, source = members[0]
    botocore_dir = Path(str(source)[: -len(name) - 1]).parent
    archive = Path(workpath) / "botocore-models" / "data.zip"
    write_archive(members, archive)
    why_not = check_archive(archive, botocore_dir, services_in([n for n, _ in members]))
    if why_not is not None:
        kept = f"botocore models: kept as {len(members)} files"
        return f"{kept}, the archive failed its check: {why_not}"
    analysis.datas = [
        entry
        for entry in analysis.datas
        if not entry[0].replace(os.sep, "/").startswith(DATA_FOLDER)
    ] + [(ARCHIVE, str(archive), "DATA")]
    return f"botocore models: {len(members)} files in one archive, {ARCHIVE}"
