"""Whole log records from every worker (runtime/logsink.py), and the runtime's
own lines in the log format in force (runtime/logs.py).

Eight workers write 2,000 records each at once (6 KB and 20 KB, print(),
`logging`, a line written in pieces, stderr; tests/fixtures/userfunc/log_records.py),
to a pipe as Lambda's stdout is one, or to Managed Instances' log socket: each
record must arrive whole, once, and under the request id of the invoke that
wrote it. The checks are functions of a command, so that test_binary.py runs
them against the built static bootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_runtime_api import FakeRuntimeAPI, LogSocket, LogStream, error_path, response_path
from support import ROOT, USERFUNC, WriteModule, run_runtime

from runtime.config import LOG_SOCKET_ENV

sys.path.insert(0, str(USERFUNC))
from log_records import KINDS, SIZES, filler  # the fixture's own module

WORKERS = 8
RECORDS = 2000  # per worker

RECORDS_APP = """\
import os

import log_records


def handler(event, context):
    if event.get("action") == "exit":
        os._exit(3)
    log_records.write(
        context.aws_request_id, event["count"], event["json"], event["barrier"], event["parties"]
    )
    return {"pid": os.getpid()}
"""


@dataclass
class Tally:
    """What a log held: each record seen (request id, number), and what was wrong."""

    seen: Counter[tuple[str, int]] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)  # not a record, or one cut or spliced
    crossed: list[str] = field(default_factory=list)  # whole, but under another request id
    misplaced: list[str] = field(default_factory=list)  # a record on the wrong stream

    def problems(self, request_ids: Iterable[str], count: int) -> dict[str, object]:
        expected = {(r, n) for r in request_ids for n in range(count)}
        missing = expected - set(self.seen)
        twice = [key for key, times in self.seen.items() if times > 1]
        found = {
            "broken": self.broken,
            "crossed": self.crossed,
            "misplaced": self.misplaced,
            "missing": sorted(missing),
            "twice": twice,
        }
        return {k: (len(v), [_short(x) for x in v[:3]]) for k, v in found.items() if v}


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) < 160 else f"{text[:80]}...{text[-60:]} ({len(text)} chars)"


def tally(tally: Tally, lines: Iterable[str], json_format: bool, stream: str) -> None:
    """Check each line of one stream ("stdout" or "stderr"); the runtime's own
    lines are let through."""
    for line in lines:
        if not line or is_runtime_line(line):
            continue
        record = parse(line, json_format)
        if record is None:
            tally.broken.append(line)
            continue
        request_id, n, writer_id = record
        tally.seen[(request_id, n)] += 1
        if writer_id != request_id:
            tally.crossed.append(line)
        kind = KINDS[n % len(KINDS)]
        if (kind == "stderr") != (stream == "stderr"):
            tally.misplaced.append(line)


def is_runtime_line(line: str) -> bool:
    if line.startswith("staticlambda: "):
        return True
    if line.startswith('{"timestamp"'):
        try:
            return str(json.loads(line).get("logger", "")).startswith("staticlambda")
        except ValueError:
            return False
    return False


def parse(line: str, json_format: bool) -> tuple[str, int, str] | None:
    """A whole record's (request id, number, request id it was logged under);
    None if the line is not exactly one record as written."""
    try:
        if line.startswith('{"level"'):  # Powertools' JSON, whatever Lambda's format
            fields = json.loads(line)
            if fields.get("service") != "userfunc":
                return None
            message, under = fields["message"], None
        elif json_format:
            fields = json.loads(line)
            if "filler" in fields:  # printed by the function as JSON
                request_id, n = fields["requestId"], fields["n"]
                whole = fields["filler"] == filler(request_id, n, SIZES[n % len(SIZES)])
                return (request_id, n, request_id) if whole and len(fields) == 3 else None
            if fields.get("logger") != "records" or fields.get("level") != "WARNING":
                return None
            message, under = fields["message"], fields["requestId"]
        elif line.startswith("[WARNING]\t"):
            _, _, under, message = line.split("\t")
        else:
            message, under = line, None
        request_id, number, fill = message.split(" ", 2)
        n = int(number)
        if fill != filler(request_id, n, SIZES[n % len(SIZES)]):
            return None
        return request_id, n, request_id if under is None else under
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# --- the runtime, its output read as Lambda reads it ---------------------------


@dataclass
class Output:
    """What one run left: stdout and stderr, each read from its pipe into a file."""

    stdout: Path
    stderr: Path
    status: int = -1
    pid: int = 0  # the parent's
    workers: set[int] = field(default_factory=set)  # the pids that served the invokes

    def lines(self, stream: str) -> Iterator[str]:
        with open(self.stdout if stream == "stdout" else self.stderr, "rb") as f:
            for raw in f:
                yield raw.rstrip(b"\n").decode("utf-8", "replace")

    def text(self, stream: str) -> str:
        return "\n".join(self.lines(stream))


def run_workers(
    command: list[str],
    cwd: Path,
    json_format: bool,
    workdir: Path,
    count: int = RECORDS,
    workers: int = WORKERS,
    **env: str,
) -> Output:
    """``workers`` invokes at once on as many workers, each writing ``count``
    records; all answered, then SIGTERM. stdout and stderr are pipes, as on
    Lambda (a file would keep large writes whole where a pipe does not)."""
    barrier = workdir / "barrier"
    barrier.mkdir()
    environ = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{ROOT}:{cwd}:{USERFUNC}",
        "AWS_LAMBDA_MAX_CONCURRENCY": str(workers),
        "AWS_LAMBDA_LOG_FORMAT": "JSON" if json_format else "Text",
        **env,
    }
    ids = [f"req-{i}" for i in range(workers)]
    output = Output(workdir / "stdout", workdir / "stderr")
    with FakeRuntimeAPI(wait_for_events=True) as api:
        for request_id in ids:
            event = {
                "action": "log",
                "count": count,
                "json": json_format,
                "barrier": str(barrier),
                "parties": workers,
            }
            api.add_event(json.dumps(event), request_id)
        environ["AWS_LAMBDA_RUNTIME_API"] = api.address
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        output.pid = process.pid
        copies = [
            threading.Thread(target=_copy, args=(process.stdout, output.stdout)),
            threading.Thread(target=_copy, args=(process.stderr, output.stderr)),
        ]
        for copy in copies:
            copy.start()
        try:
            answered = lambda: all(  # noqa: E731
                any(r.path == response_path(i) for r in list(api.requests)) for i in ids
            )
            api.wait_for(answered, timeout=300)
            responses = [r for r in list(api.requests) if r.path.endswith("/response")]
            output.workers = {r.json()["pid"] for r in responses}
            assert len(output.workers) == workers, f"{output.workers} served {workers} invokes"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for copy in copies:
                copy.join()
    output.status = process.returncode
    return output


def _copy(source: object, path: Path) -> None:
    with open(path, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)  # type: ignore[misc]


def check_whole_records_on_stdout(
    command: list[str], cwd: Path, json_format: bool, **env: str
) -> None:
    """8 workers x 2,000 records at once on stdout and stderr: every one whole,
    once, under its own request id."""
    workdir = Path(tempfile.mkdtemp(prefix="records-"))
    try:
        output = run_workers(command, cwd, json_format, workdir, **env)
        assert output.status == 0, output.text("stderr")[-3000:]
        found = Tally()
        for stream in ("stdout", "stderr"):
            tally(found, output.lines(stream), json_format, stream)
        problems = found.problems([f"req-{i}" for i in range(WORKERS)], RECORDS)
        assert not problems, problems
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_whole_records_on_the_log_socket(
    command: list[str], cwd: Path, json_format: bool, **env: str
) -> None:
    """The same with Managed Instances' log socket: each worker connects twice
    (stdout, then stderr) and writes there, whole; the parent does not connect,
    and nothing of the function's reaches the pipes."""
    workdir = Path(tempfile.mkdtemp(prefix="records-"))  # short: a socket path is <= 107 bytes
    try:
        with LogSocket(workdir / "logs.sock") as logs:
            env[LOG_SOCKET_ENV] = str(logs.path)
            output = run_workers(command, cwd, json_format, workdir, **env)
            streams = logs.streams()
        assert output.status == 0, output.text("stderr")[-3000:]
        by_worker: dict[int, list[LogStream]] = {}
        for stream in streams:
            by_worker.setdefault(stream.pid, []).append(stream)
        assert set(by_worker) == output.workers, (set(by_worker), output.workers, output.pid)
        found = Tally()
        for pid, (stdout, stderr, *more) in by_worker.items():
            assert more == [], f"worker {pid} connected {2 + len(more)} times"
            tally(found, stdout.lines(), json_format, "stdout")
            tally(found, stderr.lines(), json_format, "stderr")
        problems = found.problems([f"req-{i}" for i in range(WORKERS)], RECORDS)
        assert not problems, problems
        for name in ("stdout", "stderr"):
            strays = [line for line in output.lines(name) if line and not is_runtime_line(line)]
            assert strays == [], _short(strays)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_runtime_lines(
    command: list[str], cwd: Path, log_format: str, level: str | None, **env: str
) -> dict[str, str | None]:
    """Two workers; one dies mid-invoke (and is replaced), then SIGTERM. Every
    line on stderr is the runtime's own, in the format in force; returns the
    level of each of the two lines that say so (None: not written)."""
    if level:
        env["AWS_LAMBDA_LOG_LEVEL"] = level
    nothing = {"action": "log", "count": 0, "json": False, "barrier": None, "parties": 0}
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(json.dumps(nothing), "req-first")
        environ = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": f"{ROOT}:{cwd}:{USERFUNC}",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_MAX_CONCURRENCY": "2",
            "AWS_LAMBDA_LOG_FORMAT": log_format,
            **env,
        }
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        api.watch(process.pid)
        try:
            api.wait_for(lambda: any(r.path == response_path("req-first") for r in api.requests))
            runtime = _parent_of(api.served()["req-first"].pid)  # under the bootstrap's loaders
            api.add_event(json.dumps({"action": "exit"}), "req-exit")
            api.wait_for(lambda: any(r.path == error_path("req-exit") for r in api.requests))
            dead = api.served()["req-exit"].pid
            api.wait_for(lambda: _replaced(runtime, dead))
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    levels: dict[str, str | None] = {"worker replaced": None, "SIGTERM": None}
    for line in err.decode().splitlines():
        if log_format == "JSON":
            record = json.loads(line)  # every line: a JSON record
            assert record["logger"] == "staticlambda", line
            assert list(record) == ["timestamp", "level", "message", "logger"], line
            message, line_level = record["message"], record["level"]
        else:
            assert line.startswith("staticlambda: "), line
            message, line_level = line.removeprefix("staticlambda: "), "-"
        if message.endswith("exit status 3; starting another"):
            levels["worker replaced"] = line_level
        elif message.startswith("SIGTERM: stopping "):
            levels["SIGTERM"] = line_level
    return levels


def _parent_of(pid: int | None) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _replaced(parent: int, dead: int | None) -> bool:
    """Two workers again, the dead one not among them."""
    with open(f"/proc/{parent}/task/{parent}/children") as listed:
        workers = {int(child) for child in listed.read().split()}
    return len(workers) == 2 and dead not in workers


# --- from source ------------------------------------------------------------------


SOURCE = [sys.executable, "-m", "runtime", "records_app.handler"]


@pytest.fixture
def records_app(tmp_path: Path, write_module: WriteModule) -> Path:
    write_module("records_app", RECORDS_APP)
    return tmp_path


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_eight_workers_write_whole_records_to_stdout(records_app: Path, log_format: str) -> None:
    check_whole_records_on_stdout(SOURCE, records_app, log_format == "JSON")


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_eight_workers_write_whole_records_to_the_log_socket(
    records_app: Path, log_format: str
) -> None:
    check_whole_records_on_the_log_socket(SOURCE, records_app, log_format == "JSON")


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (None, {"worker replaced": "ERROR", "SIGTERM": "INFO"}),
        ("INFO", {"worker replaced": "ERROR", "SIGTERM": "INFO"}),
        ("WARN", {"worker replaced": "ERROR", "SIGTERM": None}),
        ("ERROR", {"worker replaced": "ERROR", "SIGTERM": None}),
        ("FATAL", {"worker replaced": None, "SIGTERM": None}),
    ],
)
def test_the_runtime_s_own_lines_are_json_records_filtered_by_level(
    records_app: Path, level: str | None, expected: dict[str, str | None]
) -> None:
    assert check_runtime_lines(SOURCE, records_app, "JSON", level) == expected


def test_the_runtime_s_own_lines_stay_text_in_text_format(records_app: Path) -> None:
    found = check_runtime_lines(SOURCE, records_app, "Text", None)
    assert found == {"worker replaced": "-", "SIGTERM": "-"}


def test_a_configuration_error_is_a_json_record_in_json_format(tmp_path: Path) -> None:
    done = run_runtime(tmp_path, "handlers.echo.handler", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("ERROR", "staticlambda")
    assert record["message"].startswith("AWS_LAMBDA_RUNTIME_API is not set")


def test_a_failing_runtime_api_is_an_error_record(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    """One process: a refused response and the API failing are ERROR records
    (kept at ERROR)."""
    api.add_event(b"{}", "req-1")
    api.fail(response_path("req-1"), 413)
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "ERROR"}
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api, env=env)
    assert done.returncode == 1
    refused, failed = (json.loads(line) for line in done.stderr.splitlines())
    assert refused["level"] == "ERROR"
    assert refused["message"].startswith("response for req-1 refused, 2 bytes: ")
    assert (failed["level"], failed["message"][:31]) == ("ERROR", "the Runtime API failed, exiting")


# --- from the static bootstrap: tests/fixtures/userfunc, its Powertools logger too ---


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_the_bootstrap_s_workers_write_whole_records_to_stdout(
    user_dist: Path, tmp_path: Path, log_format: str
) -> None:
    bootstrap = [str(user_dist / "bootstrap")]
    check_whole_records_on_stdout(bootstrap, user_dist, log_format == "JSON", TMPDIR=str(tmp_path))


def test_the_bootstrap_s_workers_write_whole_records_to_the_log_socket(
    user_dist: Path, tmp_path: Path
) -> None:
    bootstrap = [str(user_dist / "bootstrap")]
    check_whole_records_on_the_log_socket(bootstrap, user_dist, True, TMPDIR=str(tmp_path))


def test_the_bootstrap_s_own_lines_are_json_records_filtered_by_level(
    user_dist: Path, tmp_path: Path
) -> None:
    bootstrap = [str(user_dist / "bootstrap")]
    found = check_runtime_lines(bootstrap, user_dist, "JSON", "WARN", TMPDIR=str(tmp_path))
    assert found == {"worker replaced": "ERROR", "SIGTERM": None}
