"""`make bench`: this project's static bootstrap (A) beside awslambdaric (B),
the same echo handler, under the same official emulator, on the same machine.

    python -m build.bench [--cold N] [--warm N] [--bootstrap dist/bootstrap] [--json out]
                          [--build] [--breakdown N] [--no-importtime]
                          [--managed-instances N [--managed-only] [--boto3-powertools]]

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

With --managed-instances N, then the Managed Instances rows: N invokes at once in
one execution environment, A beside awslambdaric's own Managed Instances mode
(managed.py says how they are measured; --managed-only: those rows alone).

One module each: parsing.py (what the runs print), proctree.py (/proc: the process
tree, its memory, its unpacked dirs), candidates.py (A, B, one emulator session),
measure.py (the runs, the cold-start breakdown), report.py (the table), managed.py
(the Managed Instances rows), runtime_api.py (the concurrent Runtime API they run
against), cli.py (the options; __main__.py calls it).
"""

from __future__ import annotations

from build.bench.candidates import (
    BENCH_CACHE,
    EVENT,
    LAMBDA_MEMORY_MB,
    REAL_EVENT,
    REAL_HANDLER,
    REAL_REQUIREMENTS,
    Candidate,
    ColdSample,
    Function,
    MemoryCgroup,
    Session,
    awslambdaric_candidate,
    awslambdaric_version,
    install_for_awslambdaric,
    runtime_env,
    static_candidate,
)
from build.bench.cli import bench_function, main, run_build, zip_size_mb
from build.bench.measure import (
    PYI_COOKIE_FORMAT,
    PYI_COOKIE_MAGIC,
    PYI_TOC_ENTRY_FORMAT,
    STATIC_PROCESSES,
    STATIC_STAGES,
    Breakdown,
    Result,
    add_python_option,
    breakdown,
    build_importtime_copy,
    measure,
    measure_limited,
    median_phases,
    median_stages,
    percentile,
    settle,
    traced_run,
)
from build.bench.parsing import (
    IMPORT_TIME,
    INIT_REPORT,
    INIT_TRACE,
    INIT_TRACE_VARIABLE,
    STRACE_CALL,
    STRACE_SYSCALLS,
    ImportSplit,
    ImportTime,
    TraceEvent,
    exec_stages,
    import_times,
    init_durations,
    init_trace,
    split_imports,
    trace_events,
)
from build.bench.proctree import (
    ProcessMemory,
    descendants,
    extraction_dirs,
    parent_pids,
    status_kb,
    tree_memory,
    vm_hwm_kb,
)
from build.bench.report import (
    ECHO_TARGETS,
    REAL_TARGETS,
    breakdown_lines,
    cpu_model,
    machine,
    number,
    ratio,
    table,
)

__all__ = [
    "BENCH_CACHE",
    "ECHO_TARGETS",
    "EVENT",
    "IMPORT_TIME",
    "INIT_REPORT",
    "INIT_TRACE",
    "INIT_TRACE_VARIABLE",
    "LAMBDA_MEMORY_MB",
    "PYI_COOKIE_FORMAT",
    "PYI_COOKIE_MAGIC",
    "PYI_TOC_ENTRY_FORMAT",
    "REAL_EVENT",
    "REAL_HANDLER",
    "REAL_REQUIREMENTS",
    "REAL_TARGETS",
    "STATIC_PROCESSES",
    "STATIC_STAGES",
    "STRACE_CALL",
    "STRACE_SYSCALLS",
    "Breakdown",
    "Candidate",
    "ColdSample",
    "Function",
    "ImportSplit",
    "ImportTime",
    "MemoryCgroup",
    "ProcessMemory",
    "Result",
    "Session",
    "TraceEvent",
    "add_python_option",
    "awslambdaric_candidate",
    "awslambdaric_version",
    "bench_function",
    "breakdown",
    "breakdown_lines",
    "build_importtime_copy",
    "cpu_model",
    "descendants",
    "exec_stages",
    "extraction_dirs",
    "import_times",
    "init_durations",
    "init_trace",
    "install_for_awslambdaric",
    "machine",
    "main",
    "measure",
    "measure_limited",
    "median_phases",
    "median_stages",
    "number",
    "parent_pids",
    "percentile",
    "ratio",
    "run_build",
    "runtime_env",
    "settle",
    "split_imports",
    "static_candidate",
    "status_kb",
    "table",
    "trace_events",
    "traced_run",
    "tree_memory",
    "vm_hwm_kb",
    "zip_size_mb",
]
