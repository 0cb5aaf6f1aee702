"""The two sides, each run once per event, cold, under the official emulator (through
make bench's Session: its own emulator, its own TMPDIR, what it unpacked removed after).

    A  the static bootstrap, from its folder, as `make invoke` runs it
    B  awslambdaric 4.2.2 on the same Python, laid out as Lambda's Python runtime lays
       out a function: the code folder first on the path and the working directory
       (/var/task), then the function's requirements (installed on this Python, as
       make bench does), then the runtime's own packages (/var/runtime: awslambdaric
       and what it needs, and boto3 as the managed runtime provides it). Python runs
       with -S (no site-packages: nothing of this project's venv is seen) and -B (no
       __pycache__ written into the user's folder)
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.metadata
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from build.bench.candidates import Candidate, Session, install_target, static_candidate
from build.bench.proctree import parent_pids
from build.errors import CompareError
from build.paths import CACHE, ROOT
from build.provided_sdk import SDK_PINS

DEV_PINS = ROOT / "requirements" / "dev.txt"
# /var/runtime's packages, as requirements/dev.txt pins them (by hash) for make bench's B.
RUNTIME_DISTRIBUTIONS = ("awslambdaric", "simplejson", "snapshot-restore-py")
COMPARE_CACHE = CACHE / "compare"
# What Lambda sets for its managed Python runtime, not for a provided one (known.py).
EXECUTION_ENV = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
ENDED = ("REPORT RequestId: ", "Invoke DONE failed")  # the emulator is done with the invoke


@dataclass(frozen=True)
class Run:
    """One event on one side: the reply, the emulator's whole log, where the runtime ran."""

    status: int
    body: bytes
    log: str
    working_directory: str  # the serving process's, read while it served ("" once gone)
    tmpdir: str


def runtime_packages() -> Path:
    """A folder with /var/runtime's packages (RUNTIME_DISTRIBUTIONS and the provided
    SDK, requirements/provided-sdk.txt), installed once per pinned content."""
    pins = pinned(DEV_PINS.read_text(), RUNTIME_DISTRIBUTIONS) + SDK_PINS.read_text()
    # Named by its content: what pip is told stays there to read when it fails.
    requirements = COMPARE_CACHE / f"runtime-{hashlib.sha256(pins.encode()).hexdigest()[:16]}.txt"
    if not requirements.exists():
        COMPARE_CACHE.mkdir(parents=True, exist_ok=True)
        written = requirements.with_name(f"{requirements.name}.{os.getpid()}")
        written.write_text(pins)
        written.replace(requirements)  # whole, for a compare running beside this one
    return install_target(COMPARE_CACHE / "runtime", requirements, "--no-deps", "--require-hashes")


def pinned(requirements: str, names: tuple[str, ...]) -> str:
    """The `name==version \\` lines and their --hash lines, of a pip-compile'd file."""
    kept, keep, found = [], False, set()
    for line in requirements.splitlines():
        if line and not line.startswith((" ", "#")):
            name = line.split("==")[0].strip().lower()
            keep = name in names
            found |= {name} if keep else set()
        if keep and not line.lstrip().startswith("#"):
            kept.append(line)
    missing = [n for n in names if n not in found]
    if missing:
        raise CompareError(f"{DEV_PINS} pins no {', '.join(missing)}: run `make venv` again")
    return "\n".join(kept) + "\n"


def awslambdaric_side(handler: str, code: Path, deps: Path | None, packages: Path) -> Candidate:
    path = ":".join(str(p) for p in (code, deps, packages) if p is not None)
    return Candidate(
        "B",
        f"awslambdaric {installed(packages)}",
        (sys.executable, "-S", "-B", "-m", "awslambdaric", handler),
        code,
        (
            ("PYTHONPATH", path),
            ("LAMBDA_TASK_ROOT", str(code)),
            ("AWS_EXECUTION_ENV", EXECUTION_ENV),
        ),
    )


def installed(packages: Path) -> str:
    for found in importlib.metadata.distributions(name="awslambdaric", path=[str(packages)]):
        return found.version
    raise CompareError(f"no awslambdaric in {packages}: remove that folder and run again")


def static_side(bootstrap: Path) -> Candidate:
    return static_candidate(bootstrap, description=f"static {bootstrap}")


def run(candidate: Candidate, env: Mapping[str, str], event: bytes, logdir: Path) -> Run:
    """``event`` on a fresh start of ``candidate``: a cold start each time."""
    session = Session(candidate, env, logdir)
    working_directory, status, body = "", 0, b""
    try:
        session.start()
        try:
            status, body = session.post(event)
        except (OSError, http.client.HTTPException) as e:
            raise CompareError(f"{candidate.label}: the emulator did not answer: {e}") from None
        wait_until_done(session)
        working_directory = serving_directory(session.pid)
    finally:
        log = session.stop()
    return Run(status, body, log, working_directory, str(session.tmpdir))


def wait_until_done(session: Session, timeout: float = 5) -> None:
    """Until the emulator has written the invoke's end (REPORT, or its failure)."""
    deadline = time.monotonic() + timeout
    while not any(end in session.log() for end in ENDED) and time.monotonic() < deadline:
        time.sleep(0.01)


def serving_directory(emulator: int) -> str:
    """The working directory of the process that serves: the deepest of the emulator's
    first line of descendants (A: staticx's loader, then the program it unpacked; B:
    python itself). "" when it has ended (an init error)."""
    children: dict[int, list[int]] = {}
    for pid, parent in parent_pids().items():
        children.setdefault(parent, []).append(pid)
    pid = emulator
    while children.get(pid):
        pid = min(children[pid])
    if pid == emulator:
        return ""
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/cwd")
    return ""
