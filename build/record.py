"""The build record, dist/bootstrap.inputs.json: what a bootstrap was built from.

A build writes it twice. First, before anything else, the inputs asked for
(``write_request``): a build that fails leaves that, so the next `make zip` builds what
was asked again, never the default handler. Then, beside the finished binary, the same
inputs with the architecture, a fingerprint of every input's content, a hash of the
function's environment (build/function_env.py) and the binary's own hash. `make zip`
reads it back to zip what was built, and rebuilds first only when ``rebuild_reason``
says why: no recorded bootstrap, an input given that differs from the recorded one, or
a recorded input whose content changed. The environment (ENV_FILE, ENV) changes no byte
of the binary: when only it changed, ``environment_changed`` says so, and the init check
alone runs again. `make deploy` reads the architecture.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from build.atomic import replace_file
from build.buildenv import BUILD_PINS
from build.package import file_sha256
from build.paths import DEFAULT_HANDLER, ROOT
from build.provided_sdk import SDK_PINS
from build.sources import walk

RECORD = "bootstrap.inputs.json"
# Inputs that reach the init check, not the binary: outside the fingerprint.
ENVIRONMENT_INPUTS = ("env_file", "env")


@dataclass(frozen=True)
class Inputs:
    """Everything a build depends on that the user chooses."""

    handler: str = DEFAULT_HANDLER
    src: str = ""
    requirements: str = ""
    only_binary: bool = False
    excludes: tuple[str, ...] = ()
    add_data: tuple[str, ...] = ()
    init_check: bool = True
    arch: str = ""  # Lambda's name; "" (only in old records): this machine's
    provided_sdk: bool = True  # boto3 as Lambda's runtime has it (build/provided_sdk.py)
    env_file: str = ""  # the function's environment (build/function_env.py): a dotenv file
    env: str = ""  # and NAME=value words; neither changes the binary, only its init check

    @property
    def src_path(self) -> Path | None:
        return Path(self.src) if self.src else None

    @property
    def requirements_path(self) -> Path | None:
        return Path(self.requirements) if self.requirements else None


def fingerprint(inputs: Inputs) -> str:
    """A hash of every input's content: the handler's files, its requirements, the
    tool's own runtime and build code. Equal fingerprints, equal binaries."""
    code = {k: v for k, v in asdict(inputs).items() if k not in ENVIRONMENT_INPUTS}
    digest = hashlib.sha256(json.dumps(code, sort_keys=True).encode())
    trees: list[tuple[Path, Sequence[str]]] = [
        (ROOT / "runtime", ()),
        (ROOT / "build", ()),
        (ROOT / "handlers", ()),
    ]
    if inputs.src_path is not None and inputs.src_path.is_dir():
        trees.append((inputs.src_path, inputs.excludes))
    for tree, excludes in trees:
        for path, relative in walk(tree, excludes):
            digest.update(f"{tree}/{relative}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    requirements = [inputs.requirements_path] if inputs.requirements_path else []
    files = [BUILD_PINS, SDK_PINS, *requirements]
    for extra in [*files, *(Path(a.partition(":")[0]) for a in inputs.add_data)]:
        if extra.is_file():
            digest.update(hashlib.sha256(extra.read_bytes()).digest())
        elif extra.is_dir():
            for path, relative in walk(extra, ()):
                digest.update(f"{relative}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_request(dist: Path, inputs: Inputs) -> None:
    """What was asked, before the build starts: all a failed build leaves."""
    replace_file(dist / RECORD, json.dumps({"inputs": asdict(inputs)}, indent=1) + "\n")


def write_record(dist: Path, inputs: Inputs, arch: str, environment_sha256: str = "") -> None:
    """The record of the bootstrap just built in ``dist`` (``environment_sha256``:
    function_env.digest of what the init check ran with)."""
    record = {
        "architecture": arch,  # what `make zip` and `make deploy` read back
        "inputs": asdict(inputs),
        "fingerprint": fingerprint(inputs),
        "environment_sha256": environment_sha256,
        "bootstrap_sha256": file_sha256(dist / "bootstrap"),
    }
    replace_file(dist / RECORD, json.dumps(record, indent=1) + "\n")


def read_inputs(dist: Path) -> tuple[Inputs, bool] | None:
    """The inputs of the last build asked for in ``dist``, and whether it finished;
    None when no build left a record there (never built, or `make clean`)."""
    try:
        record = json.loads((dist / RECORD).read_text())
        return recorded_inputs(record), "bootstrap_sha256" in record
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_record(dist: Path) -> dict[str, object] | None:
    """The record beside dist/bootstrap, if it describes that very file."""
    bootstrap, record_path = dist / "bootstrap", dist / RECORD
    if not bootstrap.is_file() or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("bootstrap_sha256") != file_sha256(bootstrap):
        return None
    return record


def recorded_inputs(record: dict[str, object]) -> Inputs:
    raw = dict(record["inputs"])  # type: ignore[call-overload]
    raw["excludes"] = tuple(raw.get("excludes", ()))
    raw["add_data"] = tuple(raw.get("add_data", ()))
    return Inputs(**raw)


def rebuild_reason(
    dist: Path, record: dict[str, object] | None, recorded: Inputs, wanted: Inputs
) -> str | None:
    """Why dist/bootstrap cannot be zipped as it is (``recorded``: its record's inputs,
    ``wanted``: those with what was given); None when it can."""
    if record is None:
        last = read_inputs(dist)
        if last is not None and not last[1]:
            return f"the last build asked for ({describe(last[0])}) did not finish"
        if not (dist / "bootstrap").exists():
            return "no bootstrap was built"
        return f"{dist / 'bootstrap'} is not the one its record describes"
    was, now = asdict(recorded), asdict(wanted)
    changed = [k for k in now if now[k] != was[k] and k not in ENVIRONMENT_INPUTS]
    if changed:
        return f"{', '.join(changed)} differ from the last build's"
    if fingerprint(wanted) != record.get("fingerprint"):
        return "files of the last build's inputs changed"
    return None


def environment_changed(record: dict[str, object], environment_sha256: str) -> bool:
    """The function's environment is not the one the recorded init check ran with."""
    return record.get("environment_sha256", "") != environment_sha256


def describe(inputs: Inputs) -> str:
    """The inputs a person chose, as make variables (no environment values)."""
    words = [f"HANDLER={inputs.handler}"]
    words += [f"SRC={inputs.src}"] if inputs.src else []
    words += [f"REQUIREMENTS={inputs.requirements}"] if inputs.requirements else []
    words += [f"ENV_FILE={inputs.env_file}"] if inputs.env_file else []
    words += ["ENV=..."] if inputs.env.strip() else []
    return " ".join(words)
