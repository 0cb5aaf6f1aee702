"""The Managed Instances rows of `make bench`: N invokes at once in one execution
environment (AWS_LAMBDA_MAX_CONCURRENCY=N), this project's static bootstrap (A)
beside awslambdaric (B), the same handler.

    python -m build.bench --managed-instances 8 [--managed-only] [--boto3-powertools]
                          [--managed-rounds 3] [--bootstrap dist/bootstrap]

The echo handler, and with --boto3-powertools a handler that imports boto3 and
Powertools and makes two boto3 clients at init (build/bench_handlers/): the
bench builds its bootstrap, and installs the same requirements for B.

A initialises once and forks N workers (runtime/workers.py). B is
`python -m awslambdaric <handler>` with the same variable: awslambdaric 4's own
Managed Instances mode, which forks N workers before the handler is imported,
so each worker imports it itself (as the managed Python runtime does).

The official emulator serves one invoke at a time, so both run against a small
Runtime API (runtime_api.py) that answers N concurrent /next, as Lambda's does on a
capacity provider. For each candidate, alternating A B per round:

    ready       wall time from the start of the process to N workers waiting on /next
    init CPU    user+system CPU of the whole process tree at that moment: the
                handler imported once, or N times
    memory      after 4 x N invokes, once every worker waits again: the sum of
                Pss (/proc/<pid>/smaps_rollup: a page shared by k processes
                counts 1/k in each) over every process of the runtime's tree,
                the bootstrap's loaders included; and the same for Rss, which
                counts shared pages once in each process

A benchmark, not a test: nothing asserts a number; ratios are A / B from one run.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.bench.candidates import (
    BENCH_CACHE,
    Candidate,
    awslambdaric_candidate,
    install_for_awslambdaric,
    static_candidate,
)
from build.bench.proctree import cpu_seconds, rollup_kb, tree_pids
from build.bench.report import ratio
from build.bench.runtime_api import ConcurrentRuntimeAPI
from build.errors import BenchError
from build.paths import ROOT

BOTO3_POWERTOOLS = ROOT / "build" / "bench_handlers" / "boto3_powertools"


@dataclass(frozen=True)
class Sample:
    ready_ms: float
    init_cpu_s: float
    pss_mb: float
    rss_mb: float
    processes: int


def run_once(
    candidate: Candidate, workers: int | None, env: Mapping[str, str], tmp: Path
) -> Sample:
    """Start the candidate with ``workers`` (None: the variable unset), wait
    for every worker to wait on /next, serve 4 invokes a worker, measure, stop."""
    concurrency = workers or 1
    api = ConcurrentRuntimeAPI()
    environ = {
        **env,
        **dict(candidate.env),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "TMPDIR": str(tmp),
    }
    if workers is not None:
        environ["AWS_LAMBDA_MAX_CONCURRENCY"] = str(workers)
    started = time.monotonic()
    process = subprocess.Popen(
        candidate.command,
        cwd=candidate.cwd,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: every worker is stopped with it
    )
    try:
        ready = api.wait_until(f"{concurrency} /next", lambda: api.waiting >= concurrency)
        init_cpu = cpu_seconds(tree_pids(process.pid))
        api.add_events(4 * concurrency)
        api.wait_until("the invokes", lambda: api.responses + len(api.errors) >= 4 * concurrency)
        if api.errors:
            raise BenchError(f"{candidate.label}: invokes failed: {api.errors[:3]}")
        api.wait_until("idle workers", lambda: api.waiting >= concurrency)
        time.sleep(0.2)  # let the last response's work settle
        pids = tree_pids(process.pid)
        pss, rss = rollup_kb(pids)
        return Sample((ready - started) * 1000, init_cpu, pss / 1024, rss / 1024, len(pids))
    finally:
        stop(process)
        api.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (A's workers finish and A cleans /tmp; B's
    multiprocessing workers need it sent to them), then SIGKILL what is left."""
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if process.stderr is not None:
        process.stderr.close()


@dataclass
class Row:
    candidate: Candidate
    workers: int | None
    samples: list[Sample]

    def median(self, field: str) -> float:
        return float(statistics.median(getattr(s, field) for s in self.samples))


def measure(
    candidates: Sequence[Candidate],
    worker_counts: Sequence[int | None],
    rounds: int,
    env: Mapping[str, str],
) -> list[Row]:
    # C is N separate processes: it has no row for the variable unset.
    rows = [
        Row(c, n, [])
        for n in worker_counts
        for c in candidates
        if not (c.label == "C" and n is None)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-mi-") as tmp:
        for _ in range(rounds):
            for row in rows:  # A B A B...: a machine that slows down slows both
                row.samples.append(run_once(row.candidate, row.workers, env, Path(tmp)))
        left = os.listdir(tmp)
    if left:
        print(f"bench: left in TMPDIR by the runtimes: {left}", file=sys.stderr)
    return rows


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| workers | runtime | processes | ready (ms) | init CPU (s) | Σ PSS (MB) | Σ RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.workers or 'unset'} | {row.candidate.label} {row.candidate.description} "
            f"| {row.median('processes'):.0f} | {row.median('ready_ms'):.0f} "
            f"| {row.median('init_cpu_s'):.2f} | {row.median('pss_mb'):.1f} "
            f"| {row.median('rss_mb'):.1f} |"
        )
    by_count: dict[int | None, dict[str, Row]] = {}
    for row in rows:
        by_count.setdefault(row.workers, {})[row.candidate.label] = row
    lines.append("")
    for n, by_label in by_count.items():
        a = by_label.get("A")
        for other in (by_label.get("B"), by_label.get("C")):
            if a is None or other is None:
                continue
            label = other.candidate.label
            lines.append(
                f"- workers {n or 'unset'}: A/{label} Σ PSS "
                f"{ratio(a.median('pss_mb'), other.median('pss_mb'))}, init CPU "
                f"{ratio(a.median('init_cpu_s'), other.median('init_cpu_s'))}, ready "
                f"{ratio(a.median('ready_ms'), other.median('ready_ms'))}"
            )
    return lines


def candidates(
    bootstrap: Path, handler: str, workers: int, src: Path | None = None
) -> list[Candidate]:
    """A, the bootstrap; B, awslambdaric on this Python, importing ``handler``
    from the repository (or from ``src``, with its requirements installed); C,
    ``workers`` separate awslambdaric processes, each serving one at a time."""
    deps = install_for_awslambdaric(src / "requirements.txt") if src is not None else None
    b = awslambdaric_candidate(handler, deps, src)
    c = Candidate(
        "C",
        f"{workers} x awslambdaric, separate processes",
        (
            "sh",
            "-c",
            'unset AWS_LAMBDA_MAX_CONCURRENCY; for i in $(seq "$2"); do '
            '"$0" -m awslambdaric "$1" & done; wait',
            sys.executable,
            handler,
            str(workers),
        ),
        b.cwd,
        b.env,
    )
    return [static_candidate(bootstrap), b, c]


def build_bootstrap(src: Path) -> Path:
    """The bench handler in ``src``, built by the pipeline as a user's would be."""
    dist = BENCH_CACHE / f"dist-{src.name}"
    build = [sys.executable, "-m", "build.pipeline", "build", "--handler", "app.handler"]
    args = ["--src", str(src), "--requirements", str(src / "requirements.txt")]
    done = subprocess.run([*build, *args, "--dist", str(dist)], cwd=ROOT)
    if done.returncode != 0:
        raise BenchError(f"the build of {src} failed (its output is above)")
    return dist / "bootstrap"


def run(
    bootstrap: Path,
    handler: str,
    workers: int,
    rounds: int,
    env: Mapping[str, str],
    boto3_powertools: bool = False,
) -> list[dict[str, Any]]:
    """The rows of ``handler`` (and of the boto3 + Powertools handler), printed as
    each is measured; every sample, for the JSON record."""
    benches: list[tuple[str, Path, Path | None]] = [(handler, bootstrap, None)]
    if boto3_powertools:
        benches.append(("app.handler (boto3 + Powertools)", Path(), BOTO3_POWERTOOLS))
    record = []
    for name, a_bootstrap, src in benches:
        if src is not None:
            a_bootstrap = build_bootstrap(src)
        pair = candidates(a_bootstrap, name.split()[0], workers, src)
        rows = measure(pair, [None, workers], rounds, env)
        lines = [
            f"## Lambda Managed Instances: {name}, AWS_LAMBDA_MAX_CONCURRENCY unset and {workers}",
            "",
            f"- {rounds} rounds, alternating A B; medians; 4 invokes a worker before "
            "memory is read",
            "",
            *table(rows),
            "",
        ]
        print("\n".join(lines), flush=True)
        record += [
            {
                "handler": name,
                "label": r.candidate.label,
                "workers": r.workers,
                "samples": [s.__dict__ for s in r.samples],
            }
            for r in rows
        ]
    return record
