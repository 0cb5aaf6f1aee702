"""The report: the machine, the side-by-side table with ratios, the cold-start breakdown."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
from collections.abc import Mapping

from build.bench.candidates import LAMBDA_MEMORY_MB
from build.bench.measure import STATIC_PROCESSES, STATIC_STAGES, Breakdown, Result, percentile
from build.bench.parsing import INIT_TRACE_VARIABLE, STRACE_SYSCALLS
from build.freeze import handler_module
from build.rie import SAM_CLI_VERSION


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
