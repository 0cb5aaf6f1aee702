"""The candidates (A: the static bootstrap, B: awslambdaric), the function they run, and a
session: one candidate under the emulator, its cold start and its invokes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from build.bench.parsing import init_durations
from build.bench.proctree import ProcessMemory, descendants, extraction_dirs, tree_memory
from build.errors import BenchError, BuildError
from build.package import file_sha256
from build.paths import CACHE, ROOT
from build.paths import DEFAULT_HANDLER as ECHO_HANDLER
from build.rie import INVOKE_PATH, Emulator

EVENT = b'{"text":"Hello"}'
BENCH_CACHE = CACHE / "bench"
# The real function: what a new user's API function imports at init.
REAL_HANDLER = "handlers.api.handler"
REAL_REQUIREMENTS = ROOT / "handlers" / "api-requirements.txt"
REAL_EVENT = json.dumps(
    {
        "version": "2.0",
        "routeKey": "GET /hello",
        "rawPath": "/hello",
        "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {
            "http": {"method": "GET", "path": "/hello", "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
).encode()
LAMBDA_MEMORY_MB = 128  # Lambda's default function size, the limit of the limited run


@dataclass(frozen=True)
class Candidate:
    label: str
    description: str
    command: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()  # what this candidate's runtime is told besides


@dataclass(frozen=True)
class Function:
    """What both candidates serve, the event they get, and how to check the reply."""

    handler: str
    event: bytes = EVENT
    requirements: Path | None = None

    def answered(self, body: bytes) -> bool:
        reply = json.loads(body or b"null")
        if self.event == EVENT:
            return bool(reply == json.loads(EVENT))
        return isinstance(reply, dict) and reply.get("statusCode") == 200


def static_candidate(bootstrap: Path, label: str = "A", description: str = "") -> Candidate:
    return Candidate(
        label, description or f"static {bootstrap.name}", (str(bootstrap),), bootstrap.parent
    )


def awslambdaric_candidate(
    handler: str, deps: Path | None = None, src: Path | None = None
) -> Candidate:
    """awslambdaric on this Python, run from ``src`` (default: the repository),
    ``src`` and the handler's requirements (if any) on its path."""
    path = ":".join(str(p) for p in (src, deps) if p is not None)
    return Candidate(
        "B",
        f"awslambdaric {awslambdaric_version()}",
        (sys.executable, "-m", "awslambdaric", handler),
        src or ROOT,
        (("PYTHONPATH", path),) if path else (),
    )


def install_for_awslambdaric(requirements: Path) -> Path:
    """The same requirements the bootstrap was built with, installed for B, on
    the same Python, once per requirements file content."""
    return install_target(BENCH_CACHE / "deps", requirements)


def install_target(folder: Path, requirements: Path, *pip_options: str) -> Path:
    """``pip install --target`` of a requirements file into ``folder``/<its hash>,
    on this Python, once per content: a folder to put on B's PYTHONPATH."""
    target = folder / file_sha256(requirements)[:16]
    if (target / ".installed").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *pip_options,
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        check=False,
    )
    if done.returncode != 0:
        raise BuildError(f"pip could not install {requirements} for awslambdaric")
    (target / ".installed").touch()
    return target


def awslambdaric_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("awslambdaric")
    except PackageNotFoundError:
        return "(not installed)"


def runtime_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without what would tell either runtime
    something the other is not told (AWS settings, a handler, Python flags)."""
    return {k: v for k, v in environ.items() if not k.startswith(("AWS_", "_HANDLER", "PYTHON"))}


class MemoryCgroup:
    """A fresh memory cgroup the runtime joins before it execs (a `sh` wrapper,
    ~1 ms, the same for both candidates): its peak counts every process of the
    runtime and the page cache it charges (files written to /tmp included).
    cgroup v1's memory controller or v2's; needs root."""

    V1 = Path("/sys/fs/cgroup/memory")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, name: str, limit_mb: int | None = None):
        v1 = self.V1 / "memory.max_usage_in_bytes"
        self.v1 = v1.exists()
        base = self.V1 if self.v1 else self.V2
        self.path = base / f"staticlambda-bench-{name}-{os.getpid()}"
        self.path.mkdir()
        if limit_mb is not None:
            limit = str(limit_mb << 20)
            (self.path / ("memory.limit_in_bytes" if self.v1 else "memory.max")).write_text(limit)

    @staticmethod
    def unavailable() -> str | None:
        """Why no cgroup can be made here, or None."""
        if os.geteuid() != 0:
            return "not root: no memory cgroup (peak and 128 MB runs skipped)"
        if (MemoryCgroup.V1 / "memory.max_usage_in_bytes").exists():
            return None
        controllers = MemoryCgroup.V2 / "cgroup.subtree_control"
        if controllers.exists() and "memory" in controllers.read_text().split():
            return None
        return "no cgroup v1 memory controller nor v2 memory in subtree_control: skipped"

    def wrap(self, command: Sequence[str]) -> list[str]:
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path), *command]

    def peak_mb(self) -> float | None:
        peak = self.path / ("memory.max_usage_in_bytes" if self.v1 else "memory.peak")
        try:
            return int(peak.read_text()) / (1 << 20)
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        for _ in range(50):  # the emulator's SIGKILL takes a moment to empty it
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)


@dataclass
class ColdSample:
    init_ms: float
    first_reply_ms: float
    tmp_bytes: int = 0  # what the cold start left in its own TMPDIR: what it wrote
    tmp_files: int = 0  # the files among it: each one created costs, whatever its size
    cgroup_peak_mb: float | None = None


class Session:
    """One candidate under its own emulator, with a TMPDIR of its own (and a
    memory cgroup of its own when given), from start to stop."""

    def __init__(
        self,
        candidate: Candidate,
        env: Mapping[str, str],
        logdir: Path,
        command: Sequence[str] | None = None,
        function: Function | None = None,
        cgroup: MemoryCgroup | None = None,
    ):
        log = Path(tempfile.mkstemp(prefix=f"rie-{candidate.label}-", suffix=".log", dir=logdir)[1])
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"tmp-{candidate.label}-", dir=logdir))
        self.candidate = candidate
        self.function = function or Function(ECHO_HANDLER)
        self.cgroup = cgroup
        self.command = list(command or candidate.command)
        if cgroup is not None:
            self.command = cgroup.wrap(self.command)
        self.env = {**env, **dict(candidate.env), "TMPDIR": str(self.tmpdir)}
        self.emulator = Emulator(self.command, env=self.env, cwd=candidate.cwd, log_path=log)
        self.connection: http.client.HTTPConnection | None = None
        self.dirs: set[Path] = set()

    def start(self) -> Session:
        # Emulator.start() retries on new ports if it lost the race for its own.
        self.emulator.start()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.emulator.port, timeout=120)
        return self

    @property
    def pid(self) -> int:
        assert self.emulator.process is not None, "start() first"
        return self.emulator.process.pid

    def post(self, event: bytes) -> tuple[int, bytes]:
        """One invoke on the kept-alive connection: the emulator's status and reply."""
        assert self.connection is not None, "start() first"
        self.connection.request(
            "POST", INVOKE_PATH, body=event, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        return response.status, response.read()

    def invoke(self) -> float:
        """One invoke of the function's event, which it must answer; its client-side time, in ms."""
        started = time.perf_counter()
        status, body = self.post(self.function.event)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200 or not self.function.answered(body):
            raise BenchError(
                f"{self.candidate.label} answered {status} {body[:300]!r}\n{self.log()[-2000:]}"
            )
        return elapsed

    def tmp_written(self) -> tuple[int, int]:
        """Bytes and number of the files in this session's TMPDIR: what the
        runtime wrote there."""
        total = count = 0
        for root, _dirs, files in os.walk(self.tmpdir):
            for name in files:
                with contextlib.suppress(OSError):  # gone while we looked
                    total += os.lstat(os.path.join(root, name)).st_size
                    count += 1
        return total, count

    def cold(self) -> ColdSample:
        """The first invoke, which starts the runtime, and the emulator's INIT report."""
        first_reply = self.invoke()
        self.dirs |= extraction_dirs(descendants(self.pid))
        deadline = time.monotonic() + 5
        while not init_durations(self.log()) and time.monotonic() < deadline:
            time.sleep(0.01)
        inits = init_durations(self.log())
        if not inits:
            raise BenchError(f"{self.candidate.label}: no INIT REPORT in\n{self.log()[-2000:]}")
        return ColdSample(inits[0], first_reply, *self.tmp_written())

    def memory(self) -> list[ProcessMemory]:
        return tree_memory(self.pid)

    def log(self) -> str:
        return self.emulator.log()

    def stop(self) -> str:
        """Stop the emulator, clean up after the runtime; the emulator's whole log, its \r
        kept as the runtime wrote them (a multi-line log record's inner line breaks)."""
        if self.connection is not None:
            self.connection.close()
        if self.emulator.process is not None:
            self.dirs |= extraction_dirs(descendants(self.pid))
        self.emulator.stop()
        # Complete now: the emulator has copied all the runtime wrote.
        path = self.emulator.log_path
        log = path.read_bytes().decode(errors="replace") if path.exists() else ""
        # The emulator SIGKILLs the runtime, so nothing removed what it unpacked.
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.emulator.log_path.unlink(missing_ok=True)
        return log
