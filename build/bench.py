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
import datetime
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
from build.freeze import ROOT, BuildError, FreezeInputs, handler_module
from build.package import write_zip
from build.rie import INVOKE_PATH, SAM_CLI_VERSION, Emulator, EmulatorError
from build.static import make_static
from runtime.frozen import EXTRACTION_PREFIXES

ECHO_HANDLER = "handlers.echo.handler"
EVENT = b'{"text":"Hello"}'
BENCH_CACHE = ROOT / ".cache" / "bench"

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
# What staticx and PyInstaller name the directories they unpack into.
# The static bootstrap's three processes, outermost first.
STATIC_STAGES = (
    "staticx bootloader: unpack its archive into /tmp/staticx-*",
    "PyInstaller bootloader: unpack its archive into /tmp/_MEI*",
    "Python: interpreter, imports, handler, up to GET /next",
)
STATIC_PROCESSES = ("staticx bootloader", "PyInstaller bootloader", "Python")


class BenchError(Exception):
    """A candidate did not answer as the echo handler must."""


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


def static_candidate(bootstrap: Path, label: str = "A", description: str = "") -> Candidate:
    return Candidate(
        label, description or f"static {bootstrap.name}", (str(bootstrap),), bootstrap.parent
    )


def awslambdaric_candidate(handler: str) -> Candidate:
    return Candidate(
        "B",
        f"awslambdaric {awslambdaric_version()}",
        (sys.executable, "-m", "awslambdaric", handler),
        ROOT,
    )


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


@dataclass
class ColdSample:
    init_ms: float
    first_reply_ms: float


class Session:
    """One candidate under its own emulator, from start to stop."""

    def __init__(
        self,
        candidate: Candidate,
        env: Mapping[str, str],
        logdir: Path,
        command: Sequence[str] | None = None,
    ):
        log = Path(tempfile.mkstemp(prefix=f"rie-{candidate.label}-", suffix=".log", dir=logdir)[1])
        self.candidate = candidate
        self.command = list(command or candidate.command)
        self.env = env
        self.emulator = Emulator(self.command, env=env, cwd=candidate.cwd, log_path=log)
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
            "POST", INVOKE_PATH, body=EVENT, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or json.loads(body or b"null") != json.loads(EVENT):
            raise BenchError(
                f"{self.candidate.label} answered {response.status} "
                f"{body[:300]!r}\n{self.log()[-2000:]}"
            )
        return elapsed

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
        return ColdSample(inits[0], first_reply)

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


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    candidates: Sequence[Candidate], cold: int, warm: int, env: Mapping[str, str], logdir: Path
) -> dict[str, Result]:
    """``cold`` rounds; in each, every candidate's emulator is started, then
    each is invoked once in turn (its cold start). The last round goes on with
    ``warm`` invokes each, alternating, and reads the memory before stopping."""
    results = {c.label: Result(c) for c in candidates}
    for round_ in range(cold):
        sessions: list[Session] = []
        try:
            for c in candidates:  # one after the other: each takes ports the last holds
                sessions.append(Session(c, env, logdir).start())
            for s in sessions:
                results[s.candidate.label].cold.append(s.cold())
            if round_ == cold - 1:
                for _ in range(warm):
                    for s in sessions:
                        results[s.candidate.label].warm_ms.append(s.invoke())
                for s in sessions:
                    results[s.candidate.label].memory = s.memory()
        finally:
            for s in sessions:
                s.stop()
            settle()
    return results


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
    """Give a built onefile program's Python one more option, as PyInstaller's
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


def table(a: Result, b: Result, zip_mb: float | None, build_s: float | None) -> list[str]:
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

    wa, wa_text = warm(a)
    wb, wb_text = warm(b)
    n = len(a.cold)
    return [
        f"| | A: {a.candidate.description} | B: {b.candidate.description} | A/B | target |",
        "|---|---:|---:|---:|---|",
        row(f"INIT duration, ms (median of {n})", a.init_ms, b.init_ms, "A/B ≤ 3.0x (2.0x)"),
        row(f"wall to first reply, ms (median of {n})", a.first_reply_ms, b.first_reply_ms, ""),
        row(
            f"warm latency, ms: median (p90) of {len(a.warm_ms)}",
            wa,
            wb,
            "A/B ≤ 1.2x (1.0x)",
            shown_a=wa_text,
            shown_b=wb_text,
        ),
        row(
            "peak memory, MB: VmHWM summed over processes",
            a.memory_mb or None,
            b.memory_mb or None,
            "A/B ≤ 2.5x (1.5x)",
            shown_a=f"{a.memory_mb:.1f} ({len(a.memory)} proc)" if a.memory else "—",
            shown_b=f"{b.memory_mb:.1f} ({len(b.memory)} proc)" if b.memory else "—",
        ),
        row("zip, MB", zip_mb, None, "≤ 10 MB (7 MB)", digits=2),
        row("build, s", build_s, None, ""),
    ]


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


def run_build(handler: str, dist: Path) -> float:
    """`make zip` by the pipeline; its time in seconds."""
    started = time.monotonic()
    for command in (["build", "--handler", handler], ["zip"]):
        done = subprocess.run(
            [sys.executable, "-m", "build.pipeline", *command, "--dist", str(dist)],
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise BuildError(f"the pipeline's {command[0]} failed (its output is above)")
    return time.monotonic() - started


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
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument(
        "--managed-instances",
        type=int,
        default=0,
        metavar="N",
        help="then the Managed Instances row, N workers (build/bench_concurrency.py; 0: none)",
    )
    args = parser.parse_args(argv)
    if args.cold < 1 or args.warm < 0 or args.breakdown < 0:
        parser.error("--cold must be at least 1, --warm and --breakdown at least 0")
    bootstrap = Path(args.bootstrap).resolve()
    try:
        build_s = run_build(args.handler, bootstrap.parent) if args.build else None
        if not bootstrap.is_file():
            print(f"bench: {bootstrap} does not exist: run `make build` first", file=sys.stderr)
            return 1
        env = runtime_env(os.environ)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            a, b = static_candidate(bootstrap), awslambdaric_candidate(args.handler)
            results = measure([a, b], args.cold, args.warm, env, Path(tmp))
            split = (
                breakdown(bootstrap, args.handler, args.breakdown, args.importtime, env, Path(tmp))
                if args.breakdown
                else None
            )
        zip_mb = zip_size_mb(bootstrap)
    except (BuildError, EmulatorError, BenchError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    facts = machine()
    lines = [
        f"## staticlambda bench: {args.handler}, A {a.description} vs B {b.description}",
        "",
        *(f"- {k}: {v}" for k, v in facts.items()),
        f"- cold starts alternate A B, {args.cold} each; warm invokes alternate A B, "
        f"{args.warm} each, one keep-alive connection per candidate",
        "",
        *table(results["A"], results["B"], zip_mb, build_s),
    ]
    if split is not None:
        lines += ["", *breakdown_lines(split, results["A"], args.handler)]
    print("\n".join(lines), flush=True)
    if args.json:
        record: dict[str, Any] = {
            "machine": facts,
            "zip_mb": zip_mb,
            "build_s": build_s,
            "results": {label: asdict(r) for label, r in results.items()},
            "breakdown": asdict(split) if split is not None else None,
        }
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
    if args.managed_instances:
        from build import bench_concurrency

        print()
        return bench_concurrency.run(bootstrap, args.handler, args.managed_instances, 3, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
