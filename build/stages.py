"""The build's stages, in order: checks, build environment, freeze, static, verify,
init check, record. `python -m build.pipeline build` and `make zip`'s rebuild run them.

Every stage prints its name and its time (``stage``). A build first removes what an
earlier one left in dist/ (``ARTEFACTS``), so no zip or handler name of another build
stays next to a new bootstrap; it ends with the record (build/record.py) and the SBOM.

A build for an architecture other than this machine's (ARCH=) is run by this same
pipeline inside a Debian root of that architecture, under qemu (``build_elsewhere``,
build/archroot.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from build import archroot, caches
from build.atomic import replace_file
from build.buildenv import BUILD_PINS, build_env, describe
from build.elf import host_architecture
from build.errors import BuildError
from build.freeze import FreezeInputs, freeze, handler_module
from build.initcheck import DEFAULT_TIMEOUT, verify_init
from build.missing import unresolved_imports, warnings_file
from build.paths import CACHE, ROOT
from build.provided_sdk import scan as scan_sdk_imports
from build.record import RECORD, Inputs, read_record, write_record
from build.sbom import write_sbom
from build.sources import check_syntax, extra_data, handler_data, package_names, summary
from build.static import make_static
from build.verify import verify_static

# What a build leaves in dist/; all of it goes before a new build starts, so no
# zip or handler name of another build stays next to a new bootstrap.
ARTEFACTS = (
    "bootstrap",
    "bootstrap.handler",
    RECORD,
    "bootstrap.cdx.json",
    "function.zip",
    "function.zip.sha256",
    "image.oci.tar",
    "image.oci.tar.sha256",
)


@contextmanager
def stage(name: str) -> Iterator[None]:
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    yield
    print(f"    {name} done in {time.monotonic() - started:.1f} s", flush=True)


def inside(path: Path, folder: Path) -> list[str]:
    """[path relative to folder] when path lies in it: a DIST inside SRC is not data."""
    try:
        return [path.resolve().relative_to(folder.resolve()).as_posix()]
    except ValueError:
        return []


def clear_artefacts(dist: Path) -> None:
    for name in ARTEFACTS:
        (dist / name).unlink(missing_ok=True)


def requirement_packages(python: Path) -> tuple[str, ...]:
    probe = subprocess.run(
        [str(python), str(ROOT / "build" / "package_data.py"), str(BUILD_PINS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BuildError(f"listing the requirements' packages failed: {probe.stderr[-300:]}")
    return tuple(json.loads(probe.stdout))


def check_unresolved_imports(workdir: Path, src: Path, requirements: Path | None) -> None:
    """What the init check cannot see: modules of SRC imported only later (build/missing.py)."""
    warnings = warnings_file(workdir)
    if warnings is None:
        return
    found = unresolved_imports(warnings.read_text(errors="replace"), package_names(src))
    if not found:
        return
    name, importer = found[0]
    where = (
        f"REQUIREMENTS={requirements}" if requirements else "a requirements file (REQUIREMENTS=)"
    )
    raise BuildError(
        f"module '{importer}' imports '{name}', which nothing bundled provides: "
        f"add the package that provides '{name.split('.')[0]}' to {where}"
    )


def build(
    handler: str,
    src: Path | None,
    requirements: Path | None,
    dist: Path,
    *,
    only_binary: bool = False,
    excludes: Sequence[str] = (),
    add_data: Sequence[str] = (),
    init_check: bool = True,
    init_timeout: float = DEFAULT_TIMEOUT,
    arch: str = "",
    provided_sdk: bool = True,
) -> Path:
    handler_module(handler)  # a malformed name fails before any slow stage
    if src is not None and not src.is_dir():
        raise BuildError(f"SRC={src} is not a directory")
    if requirements is not None and not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    arch = arch or host_architecture()
    if arch != host_architecture():
        return build_elsewhere(
            arch, handler, src, requirements, dist, only_binary, excludes, add_data, init_check,
            provided_sdk,
        )  # fmt: skip
    inputs = Inputs(
        handler,
        str(src or ""),
        str(requirements or ""),
        only_binary,
        tuple(excludes),
        tuple(add_data),
        init_check,
        arch,
        provided_sdk=provided_sdk,
    )
    data = []
    if src is not None:
        # A syntax error stops the build here, before anything slow.
        check_syntax(src, handler_module(handler), excludes)
        data = handler_data(
            src, [*excludes, *inside(dist, src)], skip=[requirements] if requirements else []
        )
    for spec in add_data:
        data += extra_data(spec)
    dist.mkdir(parents=True, exist_ok=True)
    clear_artefacts(dist)
    slug = hashlib.sha256(f"{handler}|{src}|{requirements}".encode()).hexdigest()[:12]
    workdir = CACHE / "build" / slug
    caches.use_workdir(workdir)  # held until the build ends; older ones pruned
    sdk = scan_sdk_imports(src, handler_module(handler), excludes, provided_sdk)
    with stage("build environment"):
        env = build_env(requirements, only_binary, sdk)
        print(f"    {describe(env, requirements)}")
        packages = requirement_packages(env.python)
    print(f"    {summary(data)}" + (f"; excluded: {', '.join(excludes)}" if excludes else ""))
    with stage(f"freeze {handler} (PyInstaller)"):
        program = freeze(
            FreezeInputs(
                handler,
                src,
                env.python,
                workdir,
                data=tuple(data),
                requirements=requirements,
                package_data=packages,
            )
        )
    bootstrap = dist / "bootstrap"
    with stage("make static (staticx)"):
        make_static(program, bootstrap)
    with stage("verify"):
        for line in verify_static(bootstrap, arch):
            print(f"    {line}")
    if init_check:
        with stage("init check"):
            verify_init(bootstrap, handler, requirements, init_timeout)
    else:
        print("==> init check skipped (INIT_CHECK=0): the handler's import was not tried")
    if src is not None:
        check_unresolved_imports(workdir, src, requirements)
    # The handler the binary runs, for `make deploy` to tell Lambda.
    replace_file(dist / "bootstrap.handler", handler + "\n")
    write_record(dist, inputs, arch)
    size = bootstrap.stat().st_size
    print(f"{bootstrap}: {size / 1e6:.1f} MB, static, {arch}, handler {handler}")
    write_sbom(bootstrap, env.python, packages)  # dist/bootstrap.cdx.json, named in this summary
    return bootstrap


def build_inputs(wanted: Inputs, dist: Path) -> Path:
    """``build`` from a record's inputs (`make zip`'s rebuild, the command line's build)."""
    return build(
        wanted.handler,
        wanted.src_path,
        wanted.requirements_path,
        dist,
        only_binary=wanted.only_binary,
        excludes=wanted.excludes,
        add_data=wanted.add_data,
        init_check=wanted.init_check,
        arch=wanted.arch,
        provided_sdk=wanted.provided_sdk,
    )


def build_elsewhere(
    arch: str,
    handler: str,
    src: Path | None,
    requirements: Path | None,
    dist: Path,
    only_binary: bool,
    excludes: Sequence[str],
    add_data: Sequence[str],
    init_check: bool,
    provided_sdk: bool = True,
) -> Path:
    """This build, run by the pipeline of an ``arch`` build root (build/archroot.py)."""
    args = [
        f"--handler={handler}",
        f"--src={src or ''}",
        f"--requirements={requirements or ''}",
        f"--only-binary={int(only_binary)}",
        f"--exclude={' '.join(excludes)}",
        f"--add-data={' '.join(add_data)}",
        f"--init-check={int(init_check)}",
        f"--provided-sdk={int(provided_sdk)}",
        f"--dist={dist}",
        f"--arch={arch}",
    ]
    dist.mkdir(parents=True, exist_ok=True)
    seen = [dist, *([src] if src else []), *([requirements] if requirements else [])]
    seen += [Path(a.partition(":")[0]).resolve() for a in add_data]
    archroot.build_in_root(arch, args, seen)
    bootstrap = dist / "bootstrap"
    if read_record(dist) is None:
        raise BuildError(f"the {arch} build root left no recorded {bootstrap}")
    return bootstrap
