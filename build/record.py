"""The build record, dist/bootstrap.inputs.json: what a bootstrap was built from.

A build writes it beside the binary: the inputs the user chose, the architecture,
a fingerprint of every input's content and the binary's own hash. `make zip` reads
it back to zip what was built, and rebuilds first only when ``rebuild_reason`` says
why: no recorded bootstrap, an input given that differs from the recorded one, or
a recorded input whose content changed. `make deploy` reads the architecture.
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

    @property
    def src_path(self) -> Path | None:
        return Path(self.src) if self.src else None

    @property
    def requirements_path(self) -> Path | None:
        return Path(self.requirements) if self.requirements else None


def fingerprint(inputs: Inputs) -> str:
    """A hash of every input's content: the handler's files, its requirements, the
    tool's own runtime and build code. Equal fingerprints, equal binaries."""
    digest = hashlib.sha256(json.dumps(asdict(inputs), sort_keys=True).encode())
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


def write_record(dist: Path, inputs: Inputs, arch: str) -> None:
    """The record of the bootstrap just built in ``dist``."""
    record = {
        "architecture": arch,  # what `make zip` and `make deploy` read back
        "inputs": asdict(inputs),
        "fingerprint": fingerprint(inputs),
        "bootstrap_sha256": file_sha256(dist / "bootstrap"),
    }
    replace_file(dist / RECORD, json.dumps(record, indent=1) + "\n")


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
        if not (dist / "bootstrap").exists():
            return "no bootstrap was built"
        return f"{dist / 'bootstrap'} is not the one its record describes"
    if wanted != recorded:
        changed = [k for k in asdict(wanted) if asdict(wanted)[k] != asdict(recorded)[k]]
        return f"{', '.join(changed)} differ from the last build's"
    if fingerprint(wanted) != record.get("fingerprint"):
        return "files of the last build's inputs changed"
    return None
