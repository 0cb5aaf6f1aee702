"""Parsing what the runs print: the emulator's INIT REPORT, `-X importtime`, strace's
execs and connects, and the runtime's own init trace (runtime/inittrace.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from build.freeze import handler_module
from runtime.config import INIT_TRACE_ENV
from runtime.inittrace import LINE_PREFIX

INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
# `-X importtime`: "import time: <self us> | <cumulative us> | <two spaces a level><name>"
IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
# strace -f -ttt -o: "<pid> <seconds.micros> <syscall>(..."
STRACE_CALL = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)$")
STRACE_SYSCALLS = "execve,fork,vfork,clone,clone3,connect"
# The runtime's own init trace (runtime/inittrace.py), asked for by the runtime's own
# variable: "staticlambda init:   12.3 ms  <phase>  (from +4.5 ms)".
INIT_TRACE_VARIABLE = INIT_TRACE_ENV
INIT_TRACE = re.compile(
    re.escape(LINE_PREFIX) + r"\s+([0-9.]+) ms\s+(.+?)(?:\s+\(from \+[0-9.]+ ms\))?\s*$"
)


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
