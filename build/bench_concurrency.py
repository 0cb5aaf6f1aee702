"""The Managed Instances row of `make bench`: N invokes at once in one execution
environment (AWS_LAMBDA_MAX_CONCURRENCY=N), this project's static bootstrap (A)
beside awslambdaric (B), the same handler.

    python -m build.bench_concurrency [--workers 8] [--rounds 3] [--bootstrap dist/bootstrap]
                                      [--boto3-powertools]
    python -m build.bench --managed-instances 8 ...   (the same, after bench's own rows)

The echo handler, and with --boto3-powertools a handler that imports boto3 and
Powertools and makes two boto3 clients at init (build/bench_handlers/): the
bench builds its bootstrap, and installs the same requirements for B.

A initialises once and forks N workers (runtime/workers.py). B is
`python -m awslambdaric <handler>` with the same variable: awslambdaric 4's own
Managed Instances mode, which forks N workers before the handler is imported,
so each worker imports it itself (as the managed Python runtime does).

The official emulator serves one invoke at a time, so both run against a small
Runtime API here that answers N concurrent /next, as Lambda's does on a
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

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from build.bench.proctree import descendants
from build.errors import BenchError
from build.paths import CACHE, ROOT
from build.paths import DEFAULT_HANDLER as ECHO_HANDLER

BOTO3_POWERTOOLS = ROOT / "build" / "bench_handlers" / "boto3_powertools"
BENCH_CACHE = CACHE / "bench"
NEXT = "/2018-06-01/runtime/invocation/next"
EVENT = b'{"text":"Hello"}'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"


class ConcurrentRuntimeAPI:
    """The Runtime API as Lambda Managed Instances have it, for the bench:
    every /next waits (on its own thread) for an event; counts who waits and
    what was answered."""

    def __init__(self) -> None:
        self._events: deque[bytes] = deque()
        self._changed = threading.Condition()
        self.waiting = 0
        self.responses = 0
        self.errors: list[str] = []
        self._served = 0
        self._closed = False
        self._server = _QuietServer(("127.0.0.1", 0), _APIHandler)
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add_events(self, count: int) -> None:
        with self._changed:
            self._events.extend([EVENT] * count)
            self._changed.notify_all()

    def next_event(self) -> tuple[str, bytes] | None:
        with self._changed:
            self.waiting += 1
            self._changed.notify_all()
            while not self._events and not self._closed:
                self._changed.wait()
            self.waiting -= 1
            if self._closed:
                return None
            self._served += 1
            return f"bench-{self._served}", self._events.popleft()

    def answered(self, path: str) -> None:
        with self._changed:
            if path.endswith("/response"):
                self.responses += 1
            else:
                self.errors.append(path)
            self._changed.notify_all()

    def wait_until(self, what: str, done: Any, timeout: float = 120) -> float:
        """Block until ``done()`` holds (under the lock); returns when it did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out waiting for {what}")
                self._changed.wait(min(left, 0.5))
            return time.monotonic()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a runtime stopped mid-request resets its connection: expected here


class _APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as both runtimes use it

    def do_GET(self) -> None:
        api: ConcurrentRuntimeAPI = self.server.api  # type: ignore[attr-defined]
        event = api.next_event() if self.path == NEXT else None
        if event is None:
            self._answer(500, {}, b'{"errorType":"Bench.Closed"}')
            return
        request_id, body = event
        deadline = str(int(time.time() * 1000) + 60_000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": deadline,
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Content-Type": "application/json",
        }
        self._answer(200, headers, body)

    def do_POST(self) -> None:
        api: ConcurrentRuntimeAPI = self.server.api  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        api.answered(self.path)
        self._answer(202, {}, b'{"status":"OK"}')

    def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the runtime was stopped while it waited

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- the process tree ----------------------------------------------------------------


def tree(root: int) -> list[int]:
    """``root`` and every process under it (bench's own walk of /proc)."""
    return [root, *descendants(root)]


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def rollup_kb(pids: Sequence[int]) -> tuple[int, int]:
    """Summed Pss and Rss, in kB, from each process's smaps_rollup."""
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


# --- one run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    label: str
    description: str
    command: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)  # its own, on top of the common one


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
    environ = {**env, **candidate.env, "AWS_LAMBDA_RUNTIME_API": api.address, "TMPDIR": str(tmp)}
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
        init_cpu = cpu_seconds(tree(process.pid))
        api.add_events(4 * concurrency)
        api.wait_until("the invokes", lambda: api.responses + len(api.errors) >= 4 * concurrency)
        if api.errors:
            raise BenchError(f"{candidate.label}: invokes failed: {api.errors[:3]}")
        api.wait_until("idle workers", lambda: api.waiting >= concurrency)
        time.sleep(0.2)  # let the last response's work settle
        pids = tree(process.pid)
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
                f"{_ratio(a.median('pss_mb'), other.median('pss_mb'))}, init CPU "
                f"{_ratio(a.median('init_cpu_s'), other.median('init_cpu_s'))}, ready "
                f"{_ratio(a.median('ready_ms'), other.median('ready_ms'))}"
            )
    return lines


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def candidates(
    bootstrap: Path, handler: str, workers: int, src: Path | None = None
) -> list[Candidate]:
    """A, the bootstrap; B, awslambdaric on this Python, importing ``handler``
    from the repository (or from ``src``, with its requirements installed); C,
    ``workers`` separate awslambdaric processes, each serving one at a time."""
    from build.bench import awslambdaric_version

    b_env = {}
    if src is not None:
        b_env["PYTHONPATH"] = f"{src}:{install_requirements(src / 'requirements.txt')}"
    return [
        Candidate("A", f"static {bootstrap.name}", (str(bootstrap),), bootstrap.parent),
        Candidate(
            "B",
            f"awslambdaric {awslambdaric_version()}",
            (sys.executable, "-m", "awslambdaric", handler),
            src or ROOT,
            b_env,
        ),
        Candidate(
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
            src or ROOT,
            b_env,
        ),
    ]


def install_requirements(requirements: Path) -> Path:
    """B's copy of a bench handler's requirements, the versions A was built with."""
    target = BENCH_CACHE / f"deps-{requirements.parent.name}"
    if not (target / ".installed").exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        done = subprocess.run([*pip, "--target", str(target), "-r", str(requirements)])
        if done.returncode != 0:
            raise BenchError(f"pip could not install {requirements} (its output is above)")
        (target / ".installed").touch()
    return target


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
    json_path: str | None = None,
    boto3_powertools: bool = False,
) -> int:
    if not bootstrap.is_file():
        print(f"bench: {bootstrap} does not exist: run `make build` first", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER", "PYTHON"))}
    benches: list[tuple[str, Path, Path | None]] = [(handler, bootstrap, None)]
    if boto3_powertools:
        benches.append(("app.handler (boto3 + Powertools)", Path(), BOTO3_POWERTOOLS))
    record = []
    try:
        for name, a_bootstrap, src in benches:
            if src is not None:
                a_bootstrap = build_bootstrap(src)
            pair = candidates(a_bootstrap, name.split()[0], workers, src)
            rows = measure(pair, [None, workers], rounds, env)
            lines = [
                f"## Lambda Managed Instances: {name}, AWS_LAMBDA_MAX_CONCURRENCY unset and "
                f"{workers}",
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
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    if json_path:
        Path(json_path).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m build.bench_concurrency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=8, help="AWS_LAMBDA_MAX_CONCURRENCY (8)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--bootstrap", default="dist/bootstrap")
    parser.add_argument("--handler", default=ECHO_HANDLER, help="module.function B imports")
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument(
        "--boto3-powertools",
        action="store_true",
        help="also the boto3 + Powertools handler (builds its bootstrap first)",
    )
    args = parser.parse_args(argv)
    if args.workers < 2 or args.rounds < 1:
        parser.error("--workers must be at least 2, --rounds at least 1")
    return run(
        Path(args.bootstrap).resolve(),
        args.handler,
        args.workers,
        args.rounds,
        args.json,
        args.boto3_powertools,
    )


if __name__ == "__main__":
    sys.exit(main())
