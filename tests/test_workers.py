"""Lambda Managed Instances (runtime/workers.py): AWS_LAMBDA_MAX_CONCURRENCY
invokes at once, by workers forked after one init, against the fake Runtime
API (the official emulator serves one invoke at a time).

The checks are functions of a command, so that test_binary.py runs the same
ones against the built static bootstrap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import (
    INIT_ERROR,
    NEXT,
    FakeRuntimeAPI,
    Recorded,
    error_path,
    response_path,
)
from support import ROOT, WriteModule

from runtime.client import RuntimeAPIClient
from runtime.config import Config
from runtime.errors import ConfigError
from runtime.workers import Supervisor

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
    if event.get("action") == "stream_mib":
        return (bytes([i % 256]) * 1048576 for i in range(event["n"]))
    if event.get("action") == "raise_big":
        raise ValueError("x" * event["n"])
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


if os.environ.get("SHUTDOWN_MARKER"):  # registered at import: opts in to graceful shutdown
    from runtime.shutdown import on_shutdown

    @on_shutdown
    def mark():
        with open(os.environ["SHUTDOWN_MARKER"], "a") as f:
            f.write(f"{os.getpid()} {time.monotonic()}\\n")
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
        api.add_event(
            json.dumps({"action": "exit"}), "req-exit", {"Lambda-Runtime-Invocation-Id": "inv-1"}
        )
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
    assert exited.headers["Lambda-Runtime-Invocation-Id"] == "inv-1"  # from the worker's slot
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


def check_shutdown_runs_each_worker_s_callbacks_in_its_window(
    command: list[str], cwd: Path, as_the_platform: bool = True, **env: str
) -> str:
    """Four workers, each in the middle of a long invoke, and the environment
    shut down as Managed Instances does it (the invokes aborted, SIGTERM to the
    process group, SIGKILL 600 ms later), or SIGTERM to the parent alone: every
    worker runs its shutdown callbacks at once, within 600 ms of the SIGTERM,
    in its own process, and the runtime exits 0 before the SIGKILL. Returns
    the output."""
    started = Path(tempfile.mkdtemp(prefix="started-"))
    marker = started / "callbacks"
    ids = [f"req-{i}" for i in range(4)]
    with FakeRuntimeAPI(wait_for_events=True) as api:
        for request_id in ids:
            api.add_event(sleep_event(60), request_id)
        process = start(
            command, api, 4, cwd, STARTED_DIR=str(started), SHUTDOWN_MARKER=str(marker), **env
        )
        try:
            api.wait_for(lambda: set(os.listdir(started)) >= set(ids), timeout=60)
            busy = {api.served()[i].pid for i in ids}
            if as_the_platform:
                sigterm_at = api.shut_down(process.pid)
            else:
                sigterm_at = time.monotonic()
                process.send_signal(signal.SIGTERM)
            status, out, err = stop(process)
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            stop(process)
            ran = marker.read_text().split("\n")[:-1] if marker.exists() else []
            shutil.rmtree(started, ignore_errors=True)
    output = f"exit {status}\nstderr:\n{err}\nstdout:\n{out}"
    assert status == 0, output  # ended before the SIGKILL, not by it
    callbacks = {int(pid): float(at) - sigterm_at for pid, at in (line.split() for line in ran)}
    assert len(ran) == len(callbacks) == 4, (ran, output)  # once in each worker
    assert set(callbacks) == busy, output  # the busy workers, not the parent
    late = {pid: after for pid, after in callbacks.items() if not 0 <= after < 0.6}
    assert not late, f"callbacks ran this long after SIGTERM: {late}\n{output}"
    assert [p for m, p in api.paths() if m == "POST" and "/invocation/" in p] == []
    for pid in busy:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the parent"
    return out + err


LATE = {
    "time_out": "410 InvokeTimeout: Invoke timeout",
    "abort": "400 InvalidRequestID: Invalid request ID",
}


def check_a_refused_answer_costs_one_invoke(
    command: list[str], cwd: Path, concurrency: int | None, answer: str, **env: str
) -> None:
    """An invoke's response refused as Managed Instances refuses a late one (410
    InvokeTimeout) or an aborted one (400 InvalidRequestID): one line says so,
    every worker serves on (none replaced, none stopped), and the next 20
    invokes are answered. ``concurrency`` None or 1: the one process does."""
    workers = concurrency or 1
    ids = [f"req-{i}" for i in range(20)]
    with FakeRuntimeAPI(wait_for_events=True) as api:
        getattr(api, answer)("req-late")
        api.add_event(sleep_event(0.1), "req-late")
        process = start(command, api, concurrency, cwd, **env)
        try:
            api.wait_for(lambda: bool(posted(api, response_path("req-late"))), timeout=60)
            for request_id in ids:
                api.add_event(sleep_event(0.1), request_id)
            api.wait_for(lambda: all(posted(api, response_path(i)) for i in ids), timeout=60)
            served = api.served()
            alive = process.poll() is None
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            status, out, err = stop(process)
    output = f"exit {status}\nstderr:\n{err}\nstdout:\n{out}"
    assert alive, output
    pids = {served[i].pid for i in ids}
    assert len(pids) == workers and served["req-late"].pid in pids, (pids, output)
    assert "starting another" not in err and "Runtime API failed" not in err, output
    [refused] = [line for line in err.splitlines() if "req-late" in line]
    assert re.fullmatch(
        r"staticlambda: response for req-late refused, \d+ bytes: "
        rf"POST /runtime/invocation/req-late/response: {re.escape(LATE[answer])}",
        refused,
    ), output


def check_next_answered_5xx_then_served(
    command: list[str], cwd: Path, concurrency: int | None, **env: str
) -> None:
    """/next answered 503 twice for each worker: each tries again (0.1 s, 0.2 s
    later) and serves, none replaced, nothing said."""
    workers = concurrency or 1
    ids = [f"req-{i}" for i in range(2 * workers)]
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.fail(NEXT, 503, times=2 * workers)
        process = start(command, api, concurrency, cwd, **env)
        try:
            api.wait_for(lambda: api.paths().count(("GET", NEXT)) >= 2 * workers, timeout=60)
            for request_id in ids:
                api.add_event(sleep_event(0.2), request_id)
            api.wait_for(lambda: all(posted(api, response_path(i)) for i in ids), timeout=60)
            served = api.served()
            alive = process.poll() is None
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            _status, _out, err = stop(process)
    assert alive, err
    assert len({served[i].pid for i in ids}) == workers
    assert "Runtime API failed" not in err and "starting another" not in err, err


def check_a_death_while_the_event_body_is_read_is_reported(
    command: list[str], cwd: Path, **env: str
) -> None:
    """A worker killed after /next's headers named its invoke, while it waits
    for the event's body: that invoke is reported as Runtime.ExitError, and a
    new worker serves on."""
    event = json.dumps({"action": "sleep", "seconds": 0, "pad": "x" * 1_000_000})
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(event, "req-body", hold_body=True)
        process = start(command, api, 2, cwd, **env)
        try:
            reading = api.wait_until_reading_body("req-body", timeout=60)
            os.kill(reading, signal.SIGKILL)
            api.wait_for(lambda: bool(posted(api, error_path("req-body"))))
            api.release_bodies()
            api.add_event(sleep_event(0), "req-after")
            api.wait_for(lambda: bool(posted(api, response_path("req-after"))))
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            api.release_bodies()
            _status, _, err = stop(process)
    (lost,) = posted(api, error_path("req-body"))
    assert lost.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.ExitError"
    assert lost.json()["errorMessage"] == (
        "RequestId: req-body Error: Runtime exited with error: signal: killed"
    )
    assert lost.pid != reading
    assert f"worker {reading} signal: killed; starting another" in err


def check_a_50_mb_stream_arrives_whole_and_past_200_mb_is_refused(
    command: list[str], cwd: Path, concurrency: int | None, **env: str
) -> None:
    mib = 1024 * 1024
    expected = hashlib.sha256()
    for i in range(50):
        expected.update(bytes([i]) * mib)
    digests: dict[str, Any] = {}

    def on_chunk(path: str, chunk: bytes) -> None:
        digests.setdefault(path, hashlib.sha256()).update(chunk)

    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.keep_chunks, api.on_chunk = False, on_chunk
        api.add_event(json.dumps({"action": "stream_mib", "n": 50}), "req-50")
        api.add_event(json.dumps({"action": "stream_mib", "n": 201}), "req-201")
        process = start(command, api, concurrency, cwd, **env)
        try:
            done = [response_path("req-50"), response_path("req-201")]
            api.wait_for(lambda: all(posted(api, path) for path in done), timeout=120)
        except TimeoutError as e:
            raise waited_in_vain(process, e) from None
        finally:
            _status, _, _err = stop(process)
    (whole,) = posted(api, response_path("req-50"))
    assert whole.size == 50 * mib
    assert digests[response_path("req-50")].hexdigest() == expected.hexdigest()
    assert whole.trailers is not None and list(whole.trailers.items()) == []
    (cut,) = posted(api, response_path("req-201"))
    assert cut.size == 200 * mib
    assert cut.trailers is not None
    assert cut.trailers["Lambda-Runtime-Function-Error-Type"] == "Function.ResponseSizeTooLarge"


def check_a_post_never_answered_ends_the_runtime(
    command: list[str], cwd: Path, concurrency: int | None, **env: str
) -> None:
    """A response the API reads and never answers: after POST_TIMEOUT_S (10 s)
    the runtime ends, every worker with it, exit 1, with one line."""
    with FakeRuntimeAPI(wait_for_events=True) as api:
        api.add_event(sleep_event(0), "req-1")
        api.hang(response_path("req-1"))
        process = start(command, api, concurrency, cwd, **env)
        try:
            api.wait_for(lambda: bool(posted(api, response_path("req-1"))), timeout=60)
            hung = time.monotonic()
            process.wait(timeout=30)
            took = time.monotonic() - hung
        finally:
            status, _out, err = stop(process)
    assert status == 1, err
    assert 9.5 <= took < 15, took
    [line] = [line for line in err.splitlines() if line.startswith("staticlambda:")]
    workers = "stopping every worker" if (concurrency or 1) > 1 else "exiting"
    assert re.fullmatch(
        rf"staticlambda: the Runtime API failed, {workers}: "
        r"POST /runtime/invocation/req-1/response: no answer in 10 s \(ReadTimeout\)"
        + (r" \(worker \d+\)" if (concurrency or 1) > 1 else ""),
        line,
    ), err


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


def test_worker_deaths_outside_an_invoke_count_within_60_s_not_for_ever() -> None:
    supervisor = Supervisor(4, lambda slots, index: 0, RuntimeAPIClient("http://127.0.0.1:9"))
    now = [1000.0]
    supervisor.clock = lambda: now[0]
    # Three deaths a worker (12 for 4), 61 s apart: a flaky start, never too many.
    for _ in range(40):
        now[0] += 61
        assert not supervisor._too_many_idle_deaths()
    # Twelve within the minute are allowed; the thirteenth is one too many.
    for _ in range(11):
        now[0] += 1
        assert not supervisor._too_many_idle_deaths()
    now[0] += 1
    assert supervisor._too_many_idle_deaths()


def test_too_many_deaths_outside_an_invoke_stop_the_environment_saying_so(
    managed_app: Path,
) -> None:
    with FakeRuntimeAPI(wait_for_events=True) as api:
        process = start(SOURCE, api, 2, managed_app)
        killed: list[int] = []
        try:
            # 2 workers: 6 deaths outside an invoke within 60 s are replaced, the 7th is not.
            for _ in range(7):
                api.wait_for(lambda: len(children(process.pid) - set(killed)) == 2)
                idle = sorted(children(process.pid) - set(killed))[0]
                os.kill(idle, signal.SIGKILL)
                killed.append(idle)
            process.wait(timeout=20)
        finally:
            status, _, err = stop(process)
    assert status == 1, err
    lines = err.splitlines()
    assert sum("; starting another" in line for line in lines) == 6, err
    assert lines[-1] == (
        f"staticlambda: 7 workers died outside an invoke within 60 s, the last {killed[-1]} "
        "(signal: killed): stopping every worker; their output above says why"
    ), err


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


@pytest.mark.parametrize(
    "as_the_platform", [True, False], ids=["as-managed-instances", "to-the-parent"]
)
def test_sigterm_runs_each_busy_worker_s_callbacks_at_once_within_600_ms(
    managed_app: Path, as_the_platform: bool
) -> None:
    output = check_shutdown_runs_each_worker_s_callbacks_in_its_window(
        SOURCE, managed_app, as_the_platform
    )
    assert "SIGTERM: stopping 4 worker(s) now" in output


@pytest.mark.parametrize("answer", ["time_out", "abort"])
@pytest.mark.parametrize("concurrency", [4, 1, None], ids=["4-workers", "1", "unset"])
def test_a_late_or_aborted_invoke_s_answer_costs_that_invoke_only(
    managed_app: Path, concurrency: int | None, answer: str
) -> None:
    check_a_refused_answer_costs_one_invoke(SOURCE, managed_app, concurrency, answer)


@pytest.mark.parametrize("concurrency", [4, None], ids=["4-workers", "unset"])
def test_next_answered_5xx_is_tried_again_and_serving_goes_on(
    managed_app: Path, concurrency: int | None
) -> None:
    check_next_answered_5xx_then_served(SOURCE, managed_app, concurrency)


def test_a_worker_killed_while_reading_its_event_is_reported(managed_app: Path) -> None:
    check_a_death_while_the_event_body_is_read_is_reported(SOURCE, managed_app)


def test_a_worker_streams_50_mb_whole_and_is_stopped_past_200_mb(managed_app: Path) -> None:
    check_a_50_mb_stream_arrives_whole_and_past_200_mb_is_refused(SOURCE, managed_app, 2)


def test_a_post_never_answered_stops_every_worker_with_one_line(managed_app: Path) -> None:
    check_a_post_never_answered_ends_the_runtime(SOURCE, managed_app, 2)


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
