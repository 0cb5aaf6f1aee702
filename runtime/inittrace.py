"""The init breakdown: with STATICLAMBDA_INIT_TRACE=1, the first log lines say
how long each phase took, from the start of the first process to the first
`/next`.

The static bootstrap is two processes: staticx's loader (unpacks its archive,
the program's onedir tree included, into /tmp/staticx-*, forks, waits) and the
program (PyInstaller's bootloader, which re-execs itself once to set the
library path, then Python in the same process).
Their start times come from /proc, on the same clock (CLOCK_BOOTTIME) as the
marks taken inside Python, so the phases line up; /proc counts in clock ticks
(10 ms), so the process phases are that coarse.
"""

from __future__ import annotations

import os
import sys
import time

# Every line of the trace starts so; build/bench/parsing.py reads the lines back by it.
LINE_PREFIX = "staticlambda init:"


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def process_start(pid: int) -> float | None:
    """A process's start, in seconds on CLOCK_BOOTTIME (to a clock tick)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces; fields resume after its ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


# The phases that start with each process of the static bootstrap.
STATICX_STAGE = "staticx loader: unpack the program into /tmp/staticx-*, fork"
PROGRAM_STAGE = "program: PyInstaller's bootloader, its re-exec, Python start-up"


def bootstrap_processes(environ: dict[str, str] | os._Environ[str]) -> list[tuple[str, float]]:
    """(phase that starts there, start time) for each process of this bootstrap."""
    starts = []
    me = os.getpid()
    if getattr(sys, "frozen", False) and environ.get("STATICX_PROG_PATH"):
        staticx = parent_of(me)
        start = process_start(staticx) if staticx else None
        if start is not None:
            starts.append((STATICX_STAGE, start))
    start = process_start(me)
    if start is not None:
        starts.append((PROGRAM_STAGE if starts else "Python: interpreter start, imports", start))
    return starts


class InitTrace:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.marks: list[tuple[str, float]] = []

    def mark(self, phase: str) -> None:
        """``phase`` is what runs from now to the next mark."""
        if self.enabled:
            self.marks.append((phase, _boottime()))

    def report(self, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
        if not self.enabled:
            return
        points = bootstrap_processes(environ) + self.marks
        points.sort(key=lambda point: point[1])
        origin = points[0][1]
        lines = []
        for (phase, at), (_, until) in zip(points, [*points[1:], ("", _boottime())]):
            if phase == "first /next":
                continue
            lines.append(
                f"{LINE_PREFIX} {1000 * (until - at):7.1f} ms  {phase}"
                f"  (from +{1000 * (at - origin):.1f} ms)"
            )
        total_ms = 1000 * (_boottime() - origin)
        lines.append(f"{LINE_PREFIX} {total_ms:7.1f} ms  in all, to the first /next")
        sys.stderr.write("\n".join(lines) + "\n")
