"""Lambda Managed Instances (runtime/workers.py): AWS_LAMBDA_MAX_CONCURRENCY
invokes at once, by workers forked after one init, against the fake Runtime
API (the official emulator serves one invoke at a time).

The checks are functions of a command, so that test_binary.py runs the same
ones against the built static bootstrap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fake_runtime_api import INIT_ERROR, FakeRuntimeAPI, Recorded, error_path, response_path
from support import ROOT, WriteModule

from runtime.config import Config
from runtime.errors import ConfigError

# The actions of tests/fixtures/userfunc/app.py that these tests use, without its
# third-party import, for the runtime run from source.
MANAGED_APP = """\
import logging
import os
import random
import time


def handler(event, context):
    if event.get("action") == "exit":
        os._exit(3)
    if event.get("action") == "stream":
        time.sleep(0.3)
        return (part for part in (f"pid {os.getpid()} ", context.aws_request_id))
    trace_id = os.environ.get("_X_AMZN_TRACE_ID")
    logging.getLogger().warning("pid %d trace %s", os.getpid(), trace_id)
    if os.environ.get("STARTED_DIR"):  # tells a test the invoke is in the handler
        open(os.path.join(os.environ["STARTED_DIR"], context.aws_request_id), "w").close()
    time.sleep(event["seconds"])
    return {
        "pid": os.getpid(),
        "trace": trace_id,
        "request_id": context.aws_request_id,
        "random": random.random(),  # re-seeded in each worker (by CPython, at fork)
    }
"""


def sleep_event(seconds: float) -> str:
    return json.dumps({"action": "sleep", "seconds": seconds})


def start(
    command: list[str], api: FakeRuntimeAPI, concurrency: int | None, cwd: Path, **env: str
) -> subprocess.Popen[bytes]:
    environ = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{ROOT}:{cwd}",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        **env,
    }
    if concurrency is not None:
        environ["AWS_LAMBDA_MAX_CONCURRENCY"] = str(concurrency)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: nothing outlives a failed test
    )
    api.watch(process.pid)
    return process


_stopped: dict[int, tuple[int, str, str]] = {}


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """SIGTERM, as Lambda shuts an environment down; exit status and output.
    A second call returns what the first collected."""
    if process.pid not in _stopped:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate(timeout=30)
        _stopped[process.pid] = (process.returncode, out.decode(), err.decode())
    return _stopped[process.pid]


def waited_in_vain(process: subprocess.Popen[bytes], error: TimeoutError) -> AssertionError:
    """The timeout, with what the runtime wrote."""
    status, out, err = stop(process)
    return AssertionError(f"{error}; exit {status}\nstderr:\n{err}\nstdout:\n{out}")


def posted(api: FakeRuntimeAPI, path: str) -> list[Recorded]:
    return [r for r in list(api.requests) if r.method == "POST" and r.path == path]


def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        return {int(child) for child in listed.read().split()}


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def check_invokes_at_once(command: list[str], cwd: Path, log_format: str, **env: str) -> list[int]:
    """Four invokes of 0.5 s each at once on four workers: together in about
    0.5 s, each on its own worker with its own request id, trace id and log
    lines. Returns the workers' pids."""
    ids = [f"req-{i}" for i in range(4)]
    with FakeRuntimeAPI(wait_for_events=True) as api:
        for i, request_id in enumerate(ids):
            trace = f"Root=1-00000000-00000000000000000000000{i};Sampled=1"
            api.add_event(sleep_event(0.5), request_id, {"Lambda-Runtime-Trace-Id": trace})
        process = start(command, api, 4, cwd, AWS_LAMBDA_LOG_FORMAT=log_format, **env)
        try:
            api.wait_for(lambda: all(posted(api, response_path(i)) for i in ids), timeout=60)
            served = api.served()
            workers = {served[i].pid for i in ids}
            parents = {parent_of(pid) for pid in workers if pid is not None}
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            status, out, err = stop(process)
    assert status == 0, err
    assert "Traceback" not in err, err
    responses = {i: posted(api, response_path(i))[0] for i in ids}
    took = max(r.at for r in responses.values()) - min(served[i].at for i in ids)
    assert took < 1.5, f"four 0.5 s invokes took {took:.2f} s on four workers"

    # Each invoke on its own worker, from /next to the response, with its own context.
    assert len(workers) == 4 and None not in workers, served
    (parent,) = parents  # forked by one parent, which ran none of them
    assert parent not in workers
    for i, request_id in enumerate(ids):
        body = responses[request_id].json()
        assert body["request_id"] == request_id
        assert body["trace"].startswith(f"Root=1-00000000-00000000000000000000000{i};")
        assert body["pid"] == served[request_id].pid == responses[request_id].pid

    assert len({responses[i].json()["random"] for i in ids}) == 4  # no shared random state

    # Each worker's log lines carry its invoke's request id, never another's.
    lines = logged_lines(out, log_format)
    assert sorted(lines) == ids, out
    for request_id, (pid, trace) in lines.items():
        body = responses[request_id].json()
        assert (pid, trace) == (body["pid"], body["trace"])
    return sorted(workers)


def logged_lines(out: str, log_format: str) -> dict[str, tuple[int, str]]:
    """request id: (pid, trace) of each "pid N trace T" line the handler logged."""
    found = {}
    for line in out.splitlines():
        if log_format == "JSON":
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            request_id, message = record.get("requestId"), record["message"]
        else:
            fields = line.split("\t")
            if len(fields) != 4:
                continue
            request_id, message = fields[2], fields[3]
        match = re.fullmatch(r"pid (\d+) trace (\S+)", message)
        if match:
            assert request_id not in found, f"{request_id} logged twice: {out}"
            found[request_id] = (int(match[1]), match[2])
    return found


def check_dead_worker_replaced(command: list[str], cwd: Path, **env: str) -> None:
    """A worker that exits mid-invoke (os._exit), and one killed from outside
    (SIGKILL): each invoke is reported as Lambda's Runtime.ExitError, and a
    fresh worker serves the next event."""
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(json.dumps({"action": "exit"}), "req-exit")
        process = start(command, api, 2, cwd, **env)
        try:
            api.wait_for(lambda: bool(posted(api, error_path("req-exit"))), timeout=60)
            api.add_event(sleep_event(60), "req-hang")
            api.wait_for(lambda: "req-hang" in api.served())
            hung = api.served()["req-hang"].pid
            assert hung is not None
            os.kill(hung, signal.SIGKILL)
            api.wait_for(lambda: bool(posted(api, error_path("req-hang"))))
            for i in range(3):  # more than the two workers: served by the replacements
                api.add_event(sleep_event(0), f"req-after-{i}")
                api.wait_for(lambda i=i: bool(posted(api, response_path(f"req-after-{i}"))))
            served = api.served()
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            status, _, err = stop(process)
    assert status == 0, err
    (exited,) = posted(api, error_path("req-exit"))
    assert exited.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.ExitError"
    assert exited.json() == {
        "errorMessage": "RequestId: req-exit Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
        "requestId": "req-exit",
        "stackTrace": [],
    }
    (killed,) = posted(api, error_path("req-hang"))
    assert killed.json()["errorMessage"] == (
        "RequestId: req-hang Error: Runtime exited with error: signal: killed"
    )
    # Reported by the parent, not by a worker: the workers are gone.
    assert killed.pid not in {served["req-exit"].pid, hung}
    after = {served[f"req-after-{i}"].pid for i in range(3)}
    assert not after & {served["req-exit"].pid, hung}
    assert f"worker {hung} signal: killed; starting another" in err
    # No new init: the handler module was imported once, in the parent.
    assert posted(api, INIT_ERROR) == []


def check_sigterm_finishes_invokes_in_flight(
    command: list[str], cwd: Path, group: bool = False, **env: str
) -> tuple[list[int], str]:
    """SIGTERM while two invokes run: both are answered, then every worker
    and the parent exit 0. ``group``: to every process at once, as an emulator
    or Lambda may send it. Returns the workers' pids and the output."""
    started = Path(tempfile.mkdtemp(prefix="started-"))
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(sleep_event(1), "req-a")
        api.add_event(sleep_event(1), "req-b")
        process = start(command, api, 3, cwd, STARTED_DIR=str(started), **env)
        try:
            # Both in the handler: SIGTERM comes with two invokes in flight. (An
            # invoke whose /next answer is being read as SIGTERM lands is lost
            # with its worker: Lambda sends none once it is shutting down.)
            api.wait_for(lambda: len(os.listdir(started)) == 2, timeout=60)
            workers = [api.served()[i].pid for i in ("req-a", "req-b")]
            if group:
                os.killpg(process.pid, signal.SIGTERM)
            status, out, err = stop(process)
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            stop(process)
            shutil.rmtree(started, ignore_errors=True)
    assert status == 0, err
    for request_id in ("req-a", "req-b"):
        answered = posted(api, response_path(request_id))
        assert len(answered) == 1, f"{request_id} not answered: {api.paths()}\n{err}\n{out}"
        assert answered[0].json()["request_id"] == request_id
    assert sorted(api.served()) == ["req-a", "req-b"]
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the parent"
    return [pid for pid in workers if pid is not None], out + err


# --- from source ------------------------------------------------------------


@pytest.fixture
def managed_app(tmp_path: Path, write_module: WriteModule) -> Path:
    write_module("managed_app", MANAGED_APP)
    return tmp_path


SOURCE = [sys.executable, "-m", "runtime", "managed_app.handler"]


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_four_invokes_run_at_once_each_on_its_own_worker(
    managed_app: Path, log_format: str
) -> None:
    check_invokes_at_once(SOURCE, managed_app, log_format)


def test_a_dead_worker_is_replaced_and_its_invoke_reported(managed_app: Path) -> None:
    check_dead_worker_replaced(SOURCE, managed_app)


def test_each_worker_streams_its_own_response(managed_app: Path) -> None:
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(json.dumps({"action": "stream"}), "req-s1")
        api.add_event(json.dumps({"action": "stream"}), "req-s2")
        process = start(SOURCE, api, 2, managed_app)
        try:
            api.wait_for(lambda: all(posted(api, response_path(i)) for i in ("req-s1", "req-s2")))
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            status, _, err = stop(process)
    assert status == 0, err
    pids = set()
    for request_id in ("req-s1", "req-s2"):
        (response,) = posted(api, response_path(request_id))
        assert response.headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
        assert response.chunks == (f"pid {response.pid} ".encode(), request_id.encode())
        pids.add(response.pid)
    assert len(pids) == 2


def test_workers_exit_when_the_parent_is_killed(managed_app: Path) -> None:
    with FakeRuntimeAPI(wait_for_events=True) as api:
        process = start(SOURCE, api, 3, managed_app)
        try:
            api.wait_for(lambda: len(children(process.pid)) >= 3)
            workers = children(process.pid)
            assert len(workers) == 3
            process.kill()  # SIGKILL: the parent can pass nothing on
            api.wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), 10)
        finally:
            stop(process)


SHUTDOWN_APP = (
    MANAGED_APP
    + """
from runtime.shutdown import on_shutdown


@on_shutdown
def mark():
    with open(os.environ["MARKER"], "a") as f:
        f.write(f"{os.getpid()}\\n")
"""
)


@pytest.mark.parametrize("group", [False, True], ids=["to-the-parent", "to-the-group"])
def test_sigterm_finishes_invokes_then_runs_the_callbacks_once_in_each_worker(
    tmp_path: Path, write_module: WriteModule, group: bool
) -> None:
    write_module("managed_app", SHUTDOWN_APP)
    marker = tmp_path / "marker"
    busy, output = check_sigterm_finishes_invokes_in_flight(
        SOURCE, tmp_path, group, MARKER=str(marker)
    )
    ran_in = [int(line) for line in marker.read_text().split()]
    # Once in each of the three workers (two busy, one idle); never in the parent.
    assert len(ran_in) == len(set(ran_in)) == 3, output
    assert set(busy) <= set(ran_in)
    assert "SIGTERM: stopping 3 worker(s) after their invokes" in output


def test_an_init_error_is_reported_once_and_nothing_is_forked(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("broken_app", "raise RuntimeError('init failed')\n")
    with FakeRuntimeAPI(wait_for_events=True) as api:
        process = start([sys.executable, "-m", "runtime", "broken_app.handler"], api, 4, tmp_path)
        status, _, err = stop_after_exit(process)
    assert status == 1, err
    assert [r.path for r in api.requests] == [INIT_ERROR]
    assert api.requests[0].json()["errorType"] == "RuntimeError"


def stop_after_exit(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=30)
    return process.returncode, out.decode(), err.decode()


def test_one_or_unset_serves_in_the_one_process_as_before(managed_app: Path) -> None:
    for concurrency in (1, None):
        with FakeRuntimeAPI() as api:
            api.add_event(sleep_event(0), "req-1")
            process = start(SOURCE, api, concurrency, managed_app)
            status, _, err = stop_after_exit(process)  # ends at the fake's 500
        assert status == 1, err
        (response,) = posted(api, response_path("req-1"))
        assert response.json()["pid"] == process.pid == response.pid


# --- Config -------------------------------------------------------------------


@pytest.mark.parametrize(("value", "count"), [(None, 1), ("", 1), ("1", 1), (" 8 ", 8)])
def test_max_concurrency_is_read_once_into_config(value: str | None, count: int) -> None:
    env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_HANDLER": "app.handler"}
    if value is not None:
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = value
    assert Config.from_env(env).max_concurrency == count


@pytest.mark.parametrize("value", ["0", "-2", "many", "2.5"])
def test_a_max_concurrency_that_is_not_a_count_says_so(value: str) -> None:
    env = {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "_HANDLER": "app.handler",
        "AWS_LAMBDA_MAX_CONCURRENCY": value,
    }
    with pytest.raises(ConfigError, match="AWS_LAMBDA_MAX_CONCURRENCY="):
        Config.from_env(env)


def test_connections_pooled_at_init_are_closed_before_the_fork() -> None:
    """boto3's pools (urllib3) opened at init would be shared by every worker."""
    import http.server
    import threading

    import urllib3

    from runtime.workers import close_pooled_connections

    class KeepAlive(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pool = urllib3.PoolManager()
        assert pool.request("GET", f"http://127.0.0.1:{server.server_address[1]}/").data == b"ok"
        assert len(pool.pools) == 1
        assert close_pooled_connections() >= 1
        assert len(pool.pools) == 0
        # Still usable: a new connection on first use.
        assert pool.request("GET", f"http://127.0.0.1:{server.server_address[1]}/").data == b"ok"
    finally:
        server.shutdown()
        server.server_close()
