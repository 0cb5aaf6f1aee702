"""The measurements: A and B alternating (cold, warm, memory, the memory-limited run), and
A's cold start split by stage (strace) and by phase (the init trace, `-X importtime`)."""

from __future__ import annotations

import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from build import freeze as freeze_stage
from build.bench.candidates import (
    BENCH_CACHE,
    LAMBDA_MEMORY_MB,
    Candidate,
    ColdSample,
    Function,
    MemoryCgroup,
    Session,
    static_candidate,
)
from build.bench.parsing import (
    INIT_TRACE_VARIABLE,
    STRACE_SYSCALLS,
    ImportSplit,
    exec_stages,
    import_times,
    init_trace,
    split_imports,
    trace_events,
)
from build.bench.proctree import ProcessMemory
from build.errors import BenchError, BuildError, EmulatorError
from build.freeze import FreezeInputs
from build.static import make_static

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
