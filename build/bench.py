"""`make bench`: this project's static bootstrap (A) beside awslambdaric (B),
the same echo handler, under the same official emulator, on the same machine.

    python -m build.bench [--cold N] [--warm N] [--bootstrap dist/bootstrap] [--json out]
                          [--build] [--breakdown N] [--no-importtime]

A is `dist/bootstrap`; B is `python -m awslambdaric handlers.echo.handler` on
the Python that runs this (the machine's, through the project's venv), from the
repository's root. Both run under the pinned RIE (build/rie.py), alternating
A B A B, so a machine that slows down slows both:

    cold start  the emulator's INIT REPORT(durationMs), and the client's wall time
                of the first invoke (the emulator starts the runtime on it)
    warm        client-side latency of sequential invokes, each candidate on its
                own keep-alive connection, alternating one invoke each
    memory      VmHWM summed over the runtime's process tree (the emulator's
                descendants), read at the end of the warm run
    zip, build  A's function.zip, written as build/package.py writes it; the
                build's time when --build runs the pipeline first

Then A's cold start is split by stage, measured: `strace -f --seccomp-bpf`
timestamps each execve (staticx's bootloader, PyInstaller's bootloader, Python)
and the first connect() to the Runtime API, while the runtime's own init trace
(STATICLAMBDA_INIT_TRACE=1) times its phases; and a copy of the bootstrap, built
by the pipeline's own stages with `-X importtime` added to its archive's Python
options, splits the Python stage into imports and the rest.

Rounds are separated by a sync, so one round's unpacked files are not written
back during the next; the bench removes what its runtimes unpacked in /tmp
(the emulator SIGKILLs them). A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from build import freeze as freeze_stage
from build.errors import BenchError, BuildError, EmulatorError
from build.freeze import FreezeInputs, handler_module
from build.package import write_zip
from build.paths import CACHE, ROOT
from build.paths import DEFAULT_HANDLER as ECHO_HANDLER
from build.rie import INVOKE_PATH, SAM_CLI_VERSION, Emulator
from build.static import make_static
from runtime.frozen import EXTRACTION_PREFIXES

EVENT = b'{"text":"Hello"}'
BENCH_CACHE = CACHE / "bench"

INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
# `-X importtime`: "import time: <self us> | <cumulative us> | <two spaces a level><name>"
IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
# strace -f -ttt -o: "<pid> <seconds.micros> <syscall>(..."
STRACE_CALL = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)$")
STRACE_SYSCALLS = "execve,fork,vfork,clone,clone3,connect"
# The runtime's own init trace (runtime/inittrace.py), asked for by this variable:
# "staticlambda init:   12.3 ms  <phase>  (from +4.5 ms)".
INIT_TRACE_VARIABLE = "STATICLAMBDA_INIT_TRACE"
INIT_TRACE = re.compile(
    r"staticlambda init:\s+([0-9.]+) ms\s+(.+?)(?:\s+\(from \+[0-9.]+ ms\))?\s*$"
)
# PyInstaller's archive (CArchive) ends with this cookie; its table of contents
# holds run-time options as entries of type "o" (PyInstaller/archive/writers.py).
PYI_COOKIE_MAGIC = b"MEI\014\013\012\013\016"
PYI_COOKIE_FORMAT = "!8sIIII64s"
PYI_TOC_ENTRY_FORMAT = "!IIIIBc"
# The static bootstrap's execs, outermost first: staticx's loader, then in its
# child the program (PyInstaller's bootloader), which re-execs itself once to
# set its library path and then runs Python in the same process.
STATIC_STAGES = (
    "staticx loader: unpack the program into /tmp/staticx-*, fork",
    "PyInstaller's bootloader, before its re-exec",
    "Python: interpreter, imports, handler, up to GET /next",
)
STATIC_PROCESSES = ("staticx loader", "program (PyInstaller's bootloader, Python)")
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


# ---------------------------------------------------------------- parsing


def init_durations(log: str) -> list[float]:
    """Every INIT REPORT(durationMs) in an emulator's log, in ms."""
    return [float(ms) for ms in INIT_REPORT.findall(log)]


@dataclass(frozen=True)
class ImportTime:
    name: str
    depth: int  # 0 for an import the program made itself
    self_ms: float
    cumulative_ms: float


def import_times(log: str) -> list[ImportTime]:
    """The `-X importtime` lines of a log, in the order Python wrote them."""
    found = []
    for line in log.splitlines():
        m = IMPORT_TIME.search(line)
        if m:
            found.append(
                ImportTime(
                    m.group(4), len(m.group(3)) // 2, int(m.group(1)) / 1000, int(m.group(2)) / 1000
                )
            )
    return found


def init_trace(log: str) -> list[tuple[str, float]]:
    """(phase, ms) from the runtime's init trace lines, in order."""
    found = []
    for line in log.splitlines():
        m = INIT_TRACE.search(line)
        if m:
            found.append((m.group(2), float(m.group(1))))
    return found


@dataclass(frozen=True)
class TraceEvent:
    pid: int
    seconds: float
    syscall: str
    args: str


def trace_events(trace: str) -> list[TraceEvent]:
    """The calls of an `strace -f -ttt` log that started and did not fail
    (an "<unfinished ...>" call counts when its resumption did not fail)."""
    events = []
    pending: dict[tuple[int, str], TraceEvent] = {}
    for line in trace.splitlines():
        resumed = re.match(r"^(\d+)\s+\d+\.\d+\s+<\.\.\. (\w+) resumed>(.*)$", line)
        if resumed:
            event = pending.pop((int(resumed.group(1)), resumed.group(2)), None)
            if event is not None and "= -1 " not in resumed.group(3):
                events.append(event)
            continue
        m = STRACE_CALL.match(line)
        if not m:
            continue
        event = TraceEvent(int(m.group(1)), float(m.group(2)), m.group(3), m.group(4))
        if "<unfinished ...>" in event.args:
            pending[(event.pid, event.syscall)] = event
        elif "= -1 " not in event.args:
            events.append(event)
    events.sort(key=lambda e: e.seconds)
    return events


def exec_stages(events: Sequence[TraceEvent]) -> list[tuple[str, float]]:
    """(what ran, ms) from each execve to the next, the last to the first
    connect() after it: the runtime asking the Runtime API for its first event."""
    execs = [e for e in events if e.syscall == "execve"]
    if not execs:
        return []
    connects = [e for e in events if e.syscall == "connect" and e.seconds >= execs[-1].seconds]
    ends = [e.seconds for e in execs[1:]] + ([connects[0].seconds] if connects else [])
    stages = []
    for start, end in zip(execs, ends):
        path = start.args.split('"')[1] if '"' in start.args else start.args
        stages.append((path, (end - start.seconds) * 1000))
    return stages


@dataclass(frozen=True)
class ImportSplit:
    startup_ms: float  # before the entry script's first runtime import
    runtime_ms: float  # the runtime's own imports (and all they import)
    handler_ms: float  # the handler's module
    heaviest: list[tuple[str, float]]


def split_imports(times: Sequence[ImportTime], handler: str) -> ImportSplit:
    """Top-level imports in three buckets: those before the runtime's first
    (Python's start-up, PyInstaller's loader and runtime hooks), the handler's
    module (and its packages), and the rest (the runtime's)."""
    handler_top = handler_module(handler).split(".")[0]
    startup = runtime = handled = 0.0
    runtime_started = False
    for t in times:
        if t.depth != 0:
            continue
        top = t.name.split(".")[0]
        if top == "runtime":
            runtime_started = True
        if top == handler_top:
            handled += t.cumulative_ms
        elif runtime_started:
            runtime += t.cumulative_ms
        else:
            startup += t.cumulative_ms
    heaviest = sorted(
        ((t.name, t.cumulative_ms) for t in times if t.depth <= 2), key=lambda item: -item[1]
    )[:10]
    return ImportSplit(startup, runtime, handled, heaviest)


# ------------------------------------------------------------ process tree


def parent_pids() -> dict[int, int]:
    """pid -> parent pid, for every process /proc shows."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # it ended while we looked
        # The command name may hold spaces and parentheses: fields follow the last ")".
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (not ``root`` itself), parents before children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def status_kb(pid: int, name: str) -> int:
    """A ``kB`` line of /proc/<pid>/status (VmHWM, VmRSS...); 0 once the process has ended."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{name}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kb(pid: int) -> int:
    """The process's peak resident set, in kB."""
    return status_kb(pid, "VmHWM")


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    exe: str
    hwm_kb: int  # the peak: what the bench sums
    rss_kb: int  # resident when read, to tell a passing peak from a lasting one


def tree_memory(root: int) -> list[ProcessMemory]:
    """VmHWM (and VmRSS) of each process under ``root``: the runtime's tree
    when ``root`` is the emulator (whose own memory is not counted)."""
    found = []
    for pid in descendants(root):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = "?"
        found.append(ProcessMemory(pid, exe, vm_hwm_kb(pid), status_kb(pid, "VmRSS")))
    return found


def extraction_dirs(pids: Iterable[int]) -> set[Path]:
    """The staticx and PyInstaller directories these processes run from or
    map files of: what they leave in /tmp when the emulator SIGKILLs them."""
    found = set()
    for pid in pids:
        paths = []
        try:
            paths.append(os.readlink(f"/proc/{pid}/exe"))
            with open(f"/proc/{pid}/maps") as maps:
                paths += [line.split(None, 5)[-1].strip() for line in maps if "/" in line]
        except OSError:
            continue
        for path in paths:
            parts = Path(path).parts
            for i, part in enumerate(parts[:-1]):
                if part.startswith(EXTRACTION_PREFIXES):
                    found.add(Path(*parts[: i + 1]))
                    break
    return found


# -------------------------------------------------------------- candidates


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


def awslambdaric_candidate(handler: str, deps: Path | None = None) -> Candidate:
    """awslambdaric on this Python, the handler's requirements (if any) on its path."""
    return Candidate(
        "B",
        f"awslambdaric {awslambdaric_version()}",
        (sys.executable, "-m", "awslambdaric", handler),
        ROOT,
        (("PYTHONPATH", str(deps)),) if deps is not None else (),
    )


def install_for_awslambdaric(requirements: Path) -> Path:
    """The same requirements the bootstrap was built with, installed for B, on
    the same Python, once per requirements file content."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = BENCH_CACHE / "deps" / key
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

    def invoke(self) -> float:
        """One invoke on the kept-alive connection; its client-side time, in ms."""
        assert self.connection is not None, "start() first"
        started = time.perf_counter()
        self.connection.request(
            "POST",
            INVOKE_PATH,
            body=self.function.event,
            headers={"Content-Type": "application/json"},
        )
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or not self.function.answered(body):
            raise BenchError(
                f"{self.candidate.label} answered {response.status} "
                f"{body[:300]!r}\n{self.log()[-2000:]}"
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

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.emulator.process is not None:
            self.dirs |= extraction_dirs(descendants(self.pid))
        self.emulator.stop()
        # The emulator SIGKILLs the runtime, so nothing removed what it unpacked.
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.emulator.log_path.unlink(missing_ok=True)


# ------------------------------------------------------------------ measure


@dataclass
class Result:
    candidate: Candidate
    cold: list[ColdSample] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    memory: list[ProcessMemory] = field(default_factory=list)

    @property
    def init_ms(self) -> float:
        return statistics.median(s.init_ms for s in self.cold)

    @property
    def first_reply_ms(self) -> float:
        return statistics.median(s.first_reply_ms for s in self.cold)

    @property
    def memory_mb(self) -> float:
        return sum(p.hwm_kb for p in self.memory) / 1024

    @property
    def tmp_mb(self) -> float:
        return statistics.median(s.tmp_bytes for s in self.cold) / 1e6

    @property
    def tmp_files(self) -> float:
        return statistics.median(s.tmp_files for s in self.cold)

    @property
    def cgroup_peak_mb(self) -> float | None:
        peaks = [s.cgroup_peak_mb for s in self.cold if s.cgroup_peak_mb is not None]
        return statistics.median(peaks) if peaks else None

    limited_init_ms: float | None = None  # median INIT inside a LAMBDA_MEMORY_MB cgroup
    limited_note: str = ""


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    candidates: Sequence[Candidate],
    cold: int,
    warm: int,
    env: Mapping[str, str],
    logdir: Path,
    function: Function | None = None,
    cgroups: bool = False,
) -> dict[str, Result]:
    """``cold`` rounds; in each, every candidate's emulator is started, then
    each is invoked once in turn (its cold start). The last round goes on with
    ``warm`` invokes each, alternating, and reads the memory before stopping.
    With ``cgroups``, each runtime runs in a fresh memory cgroup, whose peak is
    read at the end of its round (after the warm invokes, in the last)."""
    results = {c.label: Result(c) for c in candidates}
    for round_ in range(cold):
        sessions: list[Session] = []
        groups: dict[str, MemoryCgroup] = {}
        try:
            for c in candidates:  # one after the other: each takes ports the last holds
                if cgroups:
                    groups[c.label] = MemoryCgroup(c.label)
                sessions.append(
                    Session(c, env, logdir, function=function, cgroup=groups.get(c.label)).start()
                )
            for s in sessions:
                results[s.candidate.label].cold.append(s.cold())
            if round_ == cold - 1:
                for _ in range(warm):
                    for s in sessions:
                        results[s.candidate.label].warm_ms.append(s.invoke())
                for s in sessions:
                    results[s.candidate.label].memory = s.memory()
            for label, group in groups.items():
                results[label].cold[-1].cgroup_peak_mb = group.peak_mb()
        finally:
            for s in sessions:
                s.stop()
            for group in groups.values():
                group.remove()
            settle()
    return results


def measure_limited(
    candidates: Sequence[Candidate],
    rounds: int,
    env: Mapping[str, str],
    logdir: Path,
    function: Function,
    results: dict[str, Result],
) -> None:
    """Cold starts inside a cgroup limited to Lambda's default 128 MB, as on
    Lambda: INIT's median goes to each result's limited_init_ms."""
    inits: dict[str, list[float]] = {c.label: [] for c in candidates}
    for _ in range(rounds):
        for c in candidates:
            group = MemoryCgroup(c.label, limit_mb=LAMBDA_MEMORY_MB)
            session = Session(c, env, logdir, function=function, cgroup=group)
            try:
                session.start()
                inits[c.label].append(session.cold().init_ms)
            except (BenchError, EmulatorError) as e:
                said = " ".join(str(e).split())[:80]  # one table cell
                results[c.label].limited_note = f"failed in {LAMBDA_MEMORY_MB} MB: {said}"
            finally:
                session.stop()
                group.remove()
                settle()
    for label, values in inits.items():
        if values:
            results[label].limited_init_ms = statistics.median(values)


def settle() -> None:
    """Let the disk catch up: a round's unpacked files, written then removed,
    are not to be flushed (or discarded) during the next round's cold starts."""
    os.sync()
    time.sleep(0.1)


@dataclass
class Breakdown:
    runs: int
    init_ms: float
    stages: list[tuple[str, float]]
    init_trace: list[tuple[str, float]] = field(default_factory=list)
    imports: ImportSplit | None = None
    python_ms_importtime: float | None = None
    note: str = ""


def traced_run(
    candidate: Candidate,
    env: Mapping[str, str],
    logdir: Path,
) -> tuple[float, list[tuple[str, float]], str]:
    """One cold start under strace: the INIT duration, the stages, the log."""
    trace = Path(tempfile.mkstemp(prefix="strace-", dir=logdir)[1])
    command = [
        "strace",
        "-f",
        "-ttt",
        "--seccomp-bpf",
        "-e",
        f"trace={STRACE_SYSCALLS}",
        "-o",
        str(trace),
        *candidate.command,
    ]
    session = Session(candidate, env, logdir, command=command)
    try:
        session.start()
        sample = session.cold()
        log = session.log()
    finally:
        session.stop()
        settle()
    stages = exec_stages(trace_events(trace.read_text(errors="replace")))
    trace.unlink()
    return sample.init_ms, stages, log


def median_stages(runs: Sequence[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Stage by stage, the median over runs (runs with another shape are dropped)."""
    shape = max((len(r) for r in runs), default=0)
    same = [r for r in runs if len(r) == shape]
    return [(same[0][i][0], statistics.median(r[i][1] for r in same)) for i in range(shape)]


def median_phases(runs: Sequence[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Phase by phase (by name, in the order first seen), the median over runs."""
    by_phase: dict[str, list[float]] = {}
    for run in runs:
        for phase, ms in run:
            by_phase.setdefault(phase, []).append(ms)
    return [(phase, statistics.median(values)) for phase, values in by_phase.items()]


def add_python_option(program: Path, option: str) -> None:
    """Give a built program's Python one more option, as PyInstaller's
    `--python-option` would have: an entry of type "o" appended to the table of
    contents of its archive, which on Linux is the ELF section `pydata`."""

    def objcopy(*args: str) -> None:
        done = subprocess.run(
            ["objcopy", *args, str(program)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BuildError(f"objcopy {args[0]} failed: {done.stderr.strip()[-500:]}")

    with tempfile.TemporaryDirectory(prefix="bench-pydata-") as tmp:
        section = Path(tmp) / "pydata"
        objcopy("--dump-section", f"pydata={section}")
        data = section.read_bytes()
        cookie_length = struct.calcsize(PYI_COOKIE_FORMAT)
        magic, length, toc_offset, toc_length, pyvers, pylib = struct.unpack(
            PYI_COOKIE_FORMAT, data[-cookie_length:]
        )
        if magic != PYI_COOKIE_MAGIC or length != len(data):
            raise BuildError(f"{program}: its pydata section is not a PyInstaller archive")
        head = struct.calcsize(PYI_TOC_ENTRY_FORMAT)
        name = option.encode() + b"\0"
        name += b"\0" * (-(head + len(name)) % 16)  # entries are 16-byte aligned
        entry = struct.pack(
            f"{PYI_TOC_ENTRY_FORMAT}{len(name)}s", head + len(name), toc_offset, 0, 0, 0, b"o", name
        )
        cookie = struct.pack(
            PYI_COOKIE_FORMAT,
            magic,
            length + len(entry),
            toc_offset,
            toc_length + len(entry),
            pyvers,
            pylib,
        )
        section.write_bytes(data[: toc_offset + toc_length] + entry + cookie)
        objcopy("--update-section", f"pydata={section}")


def build_importtime_copy(handler: str, workdir: Path) -> Path:
    """The bootstrap again, made by build/freeze.py's freeze() and build/static.py
    as the pipeline makes it, but with `-X importtime` given to its Python
    (PYTHON* variables do not reach a frozen interpreter)."""
    program = freeze_stage.freeze(FreezeInputs(handler, None, None, workdir))
    add_python_option(program, "X importtime")
    return make_static(program, workdir / "static" / "bootstrap")


def breakdown(
    bootstrap: Path, handler: str, runs: int, importtime: bool, env: Mapping[str, str], logdir: Path
) -> Breakdown:
    if shutil.which("strace") is None:
        return Breakdown(0, 0.0, [], note="strace is not installed: no breakdown")
    a = static_candidate(bootstrap)
    env = {**env, INIT_TRACE_VARIABLE: "1"}
    inits, stage_runs, trace_runs = [], [], []
    for _ in range(runs):
        init_ms, stages, log = traced_run(a, env, logdir)
        inits.append(init_ms)
        stage_runs.append(stages)
        trace_runs.append(init_trace(log))
    result = Breakdown(
        runs, statistics.median(inits), median_stages(stage_runs), median_phases(trace_runs)
    )
    if not importtime:
        return result
    try:
        copy = build_importtime_copy(handler, BENCH_CACHE / "importtime")
    except (BuildError, OSError) as e:
        result.note = f"no import split: {e}"
        return result
    splits, python_ms = [], []
    for _ in range(runs):
        _init, stages, log = traced_run(static_candidate(copy), env, logdir)
        times = import_times(log)
        if stages and times:
            splits.append(split_imports(times, handler))
            python_ms.append(stages[-1][1])
    if not splits:
        result.note = "no import split: the importtime copy wrote no import times"
        return result
    middle = sorted(range(len(splits)), key=lambda i: python_ms[i])[len(splits) // 2]
    result.imports = splits[middle]
    result.python_ms_importtime = python_ms[middle]
    return result


# ------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, str]:
    return {
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_version()} ({os.path.realpath(sys.executable)})",
        "emulator": f"RIE from aws-sam-cli {SAM_CLI_VERSION}",
    }


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "—"


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# The targets (A/B), per function; "" where none is set.
ECHO_TARGETS = {"init": "≤ 3.0x", "memory": "≤ 2.0x", "warm": "≤ 1.5x", "zip": "≤ 10 MB"}
REAL_TARGETS = {"init": "≤ 1.5x", "memory": "≤ 1.5x", "limited": "A within 10% of its INIT"}


def table(
    a: Result,
    b: Result,
    zip_mb: float | None,
    build_s: float | None,
    targets: Mapping[str, str] = ECHO_TARGETS,
) -> list[str]:
    def row(
        what: str,
        va: float | None,
        vb: float | None,
        target: str,
        digits: int = 1,
        shown_a: str = "",
        shown_b: str = "",
    ) -> str:
        return (
            f"| {what} | {shown_a or number(va, digits)} | {shown_b or number(vb, digits)} "
            f"| {ratio(va, vb)} | {target} |"
        )

    def warm(r: Result) -> tuple[float | None, str]:
        if not r.warm_ms:
            return None, "—"
        median = statistics.median(r.warm_ms)
        return median, f"{median:.2f} (p90 {percentile(r.warm_ms, 0.9):.2f})"

    def limited(r: Result) -> str:
        if r.limited_init_ms is None:
            return r.limited_note or "—"
        return f"{r.limited_init_ms:.1f} ({r.limited_init_ms / r.init_ms - 1:+.0%} on INIT)"

    wa, wa_text = warm(a)
    wb, wb_text = warm(b)
    n = len(a.cold)
    lines = [
        f"| | A: {a.candidate.description} | B: {b.candidate.description} | A/B | target |",
        "|---|---:|---:|---:|---|",
        row(f"INIT duration, ms (median of {n})", a.init_ms, b.init_ms, targets.get("init", "")),
        row(f"wall to first reply, ms (median of {n})", a.first_reply_ms, b.first_reply_ms, ""),
        row(
            f"warm latency, ms: median (p90) of {len(a.warm_ms)}",
            wa,
            wb,
            targets.get("warm", ""),
            shown_a=wa_text,
            shown_b=wb_text,
        ),
        row(
            "peak memory, MB: VmHWM summed over processes",
            a.memory_mb or None,
            b.memory_mb or None,
            targets.get("memory", ""),
            shown_a=f"{a.memory_mb:.1f} ({len(a.memory)} proc)" if a.memory else "—",
            shown_b=f"{b.memory_mb:.1f} ({len(b.memory)} proc)" if b.memory else "—",
        ),
        row(
            "peak of the runtime's memory cgroup, MB (median; counts page cache of /tmp files)",
            a.cgroup_peak_mb,
            b.cgroup_peak_mb,
            "reported",
        ),
        row(
            "written to /tmp per cold start, MB",
            a.tmp_mb,
            b.tmp_mb or None,
            targets.get("tmp", "≤ one copy of the bundle"),
            digits=2,
            shown_b=f"{b.tmp_mb:.2f}",
        ),
        row(
            "files written to /tmp per cold start",
            a.tmp_files,
            b.tmp_files or None,
            "",
            digits=0,
            shown_b=f"{b.tmp_files:.0f}",
        ),
    ]
    if a.limited_init_ms is not None or a.limited_note or b.limited_init_ms is not None:
        lines.append(
            row(
                f"INIT inside a {LAMBDA_MEMORY_MB} MB memory cgroup, ms (median)",
                a.limited_init_ms,
                b.limited_init_ms,
                targets.get("limited", ""),
                shown_a=limited(a),
                shown_b=limited(b),
            )
        )
    lines += [
        row("zip, MB", zip_mb, None, targets.get("zip", ""), digits=2),
        row("build, s", build_s, None, ""),
    ]
    return lines


def breakdown_lines(result: Breakdown, a: Result, handler: str) -> list[str]:
    lines = [
        f"### Where A's cold start goes (median of {result.runs} cold starts under "
        f"`strace -f --seccomp-bpf -e trace={STRACE_SYSCALLS}`)",
        "",
    ]
    if result.stages:
        named = len(result.stages) == len(STATIC_STAGES)
        lines += [
            "| stage (from its execve to the next; the last to its connect()) | ms "
            "| share of INIT |",
            "|---|---:|---:|",
        ]
        for i, (path, ms) in enumerate(result.stages):
            what = STATIC_STAGES[i] if named else f"exec {path}"
            lines.append(f"| {what} | {ms:.1f} | {ms / result.init_ms:.0%} |")
        rest = result.init_ms - sum(ms for _, ms in result.stages)
        lines += [
            f"| emulator and strace (INIT minus the stages) | {rest:.1f} "
            f"| {rest / result.init_ms:.0%} |",
            f"| INIT duration under strace | {result.init_ms:.1f} | 100% |",
        ]
    if result.init_trace:
        lines += [
            "",
            f"The runtime's own init trace ({INIT_TRACE_VARIABLE}=1; the process phases "
            "come from /proc start times, to a 10 ms clock tick):",
            "",
            "| phase | ms |",
            "|---|---:|",
            *(f"| {phase} | {ms:.1f} |" for phase, ms in result.init_trace),
        ]
    if result.imports is not None and result.python_ms_importtime is not None:
        s = result.imports
        imports = s.startup_ms + s.runtime_ms + s.handler_ms
        py = result.python_ms_importtime
        lines += [
            "",
            f'Python stage of a copy built with `--python-option "X importtime"` '
            f"(the run of median Python stage, {py:.1f} ms; importtime itself adds some):",
            "",
            "| part of the Python stage | ms |",
            "|---|---:|",
            f"| interpreter start-up and runtime code (the stage minus imports) "
            f"| {py - imports:.1f} |",
            f"| imports before the runtime's: PyInstaller's loader, runtime hooks "
            f"| {s.startup_ms:.1f} |",
            f"| runtime imports (runtime.*, and all they import) | {s.runtime_ms:.1f} |",
            *(
                [f"| handler import ({handler_module(handler)}) | {s.handler_ms:.1f} |"]
                if s.handler_ms  # importlib.import_module, as init uses, escapes importtime
                else []
            ),
            "",
            "heaviest imports (cumulative ms, top three levels): "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in s.heaviest),
        ]
    if a.memory:
        names = (
            STATIC_PROCESSES
            if len(a.memory) == len(STATIC_PROCESSES)
            else [p.exe for p in a.memory]
        )
        lines += [
            "",
            "A's memory by process, VmHWM (VmRSS at the end of the warm run): "
            + ", ".join(
                f"{name} {p.hwm_kb / 1024:.1f} MB ({p.rss_kb / 1024:.1f} MB)"
                for name, p in zip(names, a.memory)
            ),
        ]
    if result.note:
        lines += ["", result.note]
    return lines


def zip_size_mb(bootstrap: Path) -> float:
    """function.zip's size for this bootstrap, written as the pipeline writes it."""
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        return write_zip(bootstrap, Path(tmp) / "function.zip").stat().st_size / 1e6


def run_build(handler: str, dist: Path, requirements: Path | None = None) -> float:
    """`make zip` by the pipeline; its time in seconds."""
    started = time.monotonic()
    extra = ["--requirements", str(requirements)] if requirements is not None else []
    for command in (["build", "--handler", handler, *extra], ["zip"]):
        done = subprocess.run(
            [sys.executable, "-m", "build.pipeline", *command, "--dist", str(dist)],
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise BuildError(f"the pipeline's {command[0]} failed (its output is above)")
    return time.monotonic() - started


def bench_function(
    function: Function,
    bootstrap: Path,
    args: argparse.Namespace,
    env: Mapping[str, str],
    logdir: Path,
    targets: Mapping[str, str],
    build_s: float | None,
) -> tuple[list[str], dict[str, Result]]:
    """One function, A beside B: the table's lines and the results."""
    deps = install_for_awslambdaric(function.requirements) if function.requirements else None
    a = static_candidate(bootstrap)
    b = awslambdaric_candidate(function.handler, deps)
    why_not = MemoryCgroup.unavailable()
    results = measure(
        [a, b], args.cold, args.warm, env, logdir, function=function, cgroups=why_not is None
    )
    if why_not is None and args.limited:
        measure_limited([a, b], args.limited, env, logdir, function, results)
    lines = table(results["A"], results["B"], zip_size_mb(bootstrap), build_s, targets)
    if why_not is not None:
        lines += ["", f"memory cgroup: {why_not}"]
    return lines, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m build.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cold", type=int, default=15, help="cold starts of each (default 15)")
    parser.add_argument("--warm", type=int, default=500, help="warm invokes of each (default 500)")
    parser.add_argument("--bootstrap", default="dist/bootstrap")
    parser.add_argument(
        "--handler",
        default=ECHO_HANDLER,
        help="module.function both run (B imports it from the repository)",
    )
    parser.add_argument(
        "--build", action="store_true", help="build the bootstrap and its zip first, and time it"
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=3,
        metavar="N",
        help="cold starts of A under strace for the breakdown (0: none)",
    )
    parser.add_argument(
        "--no-importtime",
        dest="importtime",
        action="store_false",
        help="skip the import split (it builds a copy: ~15 s)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help=f"also bench the real function ({REAL_HANDLER}, {REAL_REQUIREMENTS.name}): "
        "it builds its bootstrap first (several minutes the first time)",
    )
    parser.add_argument(
        "--limited",
        type=int,
        default=5,
        metavar="N",
        help=f"cold starts of each inside a {LAMBDA_MEMORY_MB} MB memory cgroup (root; 0: none)",
    )
    parser.add_argument(
        "--tmpdir",
        help="where the runtimes' TMPDIRs (and the logs) are made (default: the system's, "
        "/tmp); e.g. a tmpfs, to see what a faster /tmp would change",
    )
    parser.add_argument(
        "--no-echo", dest="echo", action="store_false", help="only the real function (--real)"
    )
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument(
        "--managed-instances",
        type=int,
        default=0,
        metavar="N",
        help="then the Managed Instances row, N workers (build/bench_concurrency.py; 0: none)",
    )
    args = parser.parse_args(argv)
    if args.cold < 1 or args.warm < 0 or args.breakdown < 0 or args.limited < 0:
        parser.error("--cold must be at least 1, --warm, --breakdown and --limited at least 0")
    bootstrap = Path(args.bootstrap).resolve()
    echo = Function(args.handler)
    real = Function(REAL_HANDLER, REAL_EVENT, REAL_REQUIREMENTS)
    record: dict[str, Any] = {"machine": machine()}
    lines: list[str] = []
    try:
        build_s = run_build(args.handler, bootstrap.parent) if args.echo and args.build else None
        if args.echo and not bootstrap.is_file():
            print(f"bench: {bootstrap} does not exist: run `make build` first", file=sys.stderr)
            return 1
        env = runtime_env(os.environ)
        with tempfile.TemporaryDirectory(prefix="bench-", dir=args.tmpdir) as tmp:
            lines += [
                f"## staticlambda bench: A static bootstrap vs B awslambdaric "
                f"{awslambdaric_version()}",
                "",
                *(f"- {k}: {v}" for k, v in record["machine"].items()),
                f"- the runtimes' TMPDIRs: under {tmp}",
                f"- cold starts alternate A B, {args.cold} each; warm invokes alternate A B, "
                f"{args.warm} each, one keep-alive connection per candidate",
            ]
            if args.echo:
                lines += ["", f"### {args.handler}"]
                lines += [f"- load average before: {os.getloadavg()[0]:.2f}", ""]
                table_lines, results = bench_function(
                    echo, bootstrap, args, env, Path(tmp), ECHO_TARGETS, build_s
                )
                lines += table_lines
                record["echo"] = {"results": {k: asdict(r) for k, r in results.items()}}
                split = (
                    breakdown(
                        bootstrap, args.handler, args.breakdown, args.importtime, env, Path(tmp)
                    )
                    if args.breakdown
                    else None
                )
                if split is not None:
                    lines += ["", *breakdown_lines(split, results["A"], args.handler)]
                    record["echo"]["breakdown"] = asdict(split)
            if args.real:
                real_dist = BENCH_CACHE / "real-dist"
                real_build_s = run_build(real.handler, real_dist, real.requirements)
                lines += [
                    "",
                    f"### the real function: {real.handler} ({REAL_REQUIREMENTS.name}), "
                    f"the same requirements for both, an API Gateway HTTP event",
                    f"- load average before: {os.getloadavg()[0]:.2f}",
                    "",
                ]
                table_lines, results = bench_function(
                    real, real_dist / "bootstrap", args, env, Path(tmp), REAL_TARGETS, real_build_s
                )
                lines += table_lines
                record["real"] = {"results": {k: asdict(r) for k, r in results.items()}}
    except (BuildError, EmulatorError, BenchError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
    if args.managed_instances:
        from build import bench_concurrency

        print()
        return bench_concurrency.run(bootstrap, args.handler, args.managed_instances, 3, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
