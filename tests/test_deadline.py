"""runtime/deadline.py: the soft deadline, which logs where the handler is
shortly before Lambda's timeout: SoftDeadline itself, the runtime as a process
against the fake Runtime API, and the runtime under the official emulator."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import FakeRuntimeAPI, response_path
from support import (
    CREDENTIALS,
    TEXT_STAMP,
    assert_no_credentials,
    assert_recent_utc,
    emulator,
    records,
    rie_log,
    serve,
)

from runtime.client import RuntimeAPIClient
from runtime.config import Config
from runtime.deadline import SoftDeadline
from runtime.logs import RequestIdFilter
from runtime.loop import InvokeLoop

REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# --- the soft deadline --------------------------------------------------------


# Each test waits for the record itself (up to RECORD_WAIT_S), not for a
# window of time to pass: on a loaded machine the watcher may fire late, and
# the handler is then still where the record says it is.
RECORD_WAIT_S = 10.0


@dataclass
class DeadlineLog:
    """A logger of the test's own for SoftDeadline, the messages it got, and a
    lock held until the first one comes (waited on in C: no Python frame of
    the wait in the recorded stack, as with time.sleep)."""

    logger: logging.Logger
    messages: list[str]
    unlogged: threading.Lock


@pytest.fixture
def deadline_log(request: pytest.FixtureRequest) -> Iterator[DeadlineLog]:
    log = DeadlineLog(logging.getLogger(f"test_deadline.{request.node.name}"), [], threading.Lock())
    log.unlogged.acquire()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.messages.append(record.getMessage())
            if log.unlogged.locked():
                log.unlogged.release()

    keep = Keep()
    log.logger.addHandler(keep)
    log.logger.propagate = False
    yield log
    log.logger.removeHandler(keep)


def frames_in(message: str) -> list[str]:
    """The function names of the stack in a soft-deadline record, outermost first."""
    return re.findall(r'^  File "[^"]+", line \d+, in (\w+)$', message, re.MULTILINE)


def waiting_in_the_handler(log: DeadlineLog) -> None:
    assert log.unlogged.acquire(timeout=RECORD_WAIT_S), "no soft-deadline record"


def now_ms() -> int:
    return int(time.time() * 1000)


def test_soft_deadline_logs_once_with_the_request_id_and_where_the_handler_is(
    deadline_log: DeadlineLog,
) -> None:
    soft = SoftDeadline(200, deadline_log.logger)
    soft.arm("req-soft", now_ms() + 300)  # fires 100 ms from now
    waiting_in_the_handler(deadline_log)  # the handler is not stopped
    soft.disarm()
    [message] = deadline_log.messages
    left = re.fullmatch(
        r"Soft deadline: request req-soft has (\d+) ms left before Lambda's timeout; "
        r"the handler is at:\n(.*)",
        message,
        re.DOTALL,
    )
    assert left, message
    assert 0 <= int(left.group(1)) <= 200
    assert frames_in(message)[-1] == "waiting_in_the_handler"
    assert message.endswith(
        "in waiting_in_the_handler\n"
        '    assert log.unlogged.acquire(timeout=RECORD_WAIT_S), "no soft-deadline record"'
    )
    assert "/runtime/" not in message


def test_soft_deadline_disarmed_in_time_logs_nothing_and_rearms(
    deadline_log: DeadlineLog,
) -> None:
    soft = SoftDeadline(200, deadline_log.logger)
    soft.arm("req-quick", now_ms() + 300)
    soft.disarm()
    time.sleep(0.2)  # past where it would have fired (later only makes the test stricter)
    soft.arm("req-slow", now_ms() + 300)  # fires 100 ms from now
    waiting_in_the_handler(deadline_log)
    soft.disarm()
    assert [m.split(" has ")[0] for m in deadline_log.messages] == [
        "Soft deadline: request req-slow"
    ]


def test_soft_deadline_earlier_than_the_one_awaited_still_fires_on_time(
    deadline_log: DeadlineLog,
) -> None:
    # The watcher is not woken for a later deadline than the one it sleeps
    # towards; for an earlier one it must be, or it would fire a minute late,
    # long after the record is waited for.
    soft = SoftDeadline(200, deadline_log.logger)
    soft.arm("req-long", now_ms() + 60_000)
    time.sleep(0.05)  # the watcher now sleeps towards req-long's time
    soft.disarm()
    soft.arm("req-short", now_ms() + 300)  # fires 100 ms from now
    waiting_in_the_handler(deadline_log)
    soft.disarm()
    assert [m.split(" has ")[0] for m in deadline_log.messages] == [
        "Soft deadline: request req-short"
    ]


def test_soft_deadline_stack_starts_at_the_handler_without_runtime_frames(
    deadline_log: DeadlineLog,
) -> None:
    def handler_that_waits(event: Any, context: Any) -> str:
        waiting_in_the_handler(deadline_log)
        return "waited"

    with FakeRuntimeAPI() as api:
        api.add_event(b"{}", "req-soft", deadline_in_ms=800)
        config = Config.from_env({"AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "a.b"})
        client = RuntimeAPIClient(config.base_url)
        try:
            loop = InvokeLoop(
                client,
                handler_that_waits,
                config,
                RequestIdFilter(),
                environ={},
                soft_deadline=SoftDeadline(400, deadline_log.logger),  # fires 400 ms in
            )
            loop.run(max_invocations=1)
        finally:
            client.close()
    assert api.requests[-1].path == response_path("req-soft")
    assert api.requests[-1].body == b'"waited"'
    [message] = deadline_log.messages
    assert "request req-soft has" in message
    # Neither the loop's frames nor pytest's under it: the handler and down.
    assert frames_in(message) == ["handler_that_waits", "waiting_in_the_handler"]


@pytest.mark.parametrize("margin", [None, "0"])
def test_soft_deadline_record_in_the_function_s_log_and_off_with_0(
    tmp_path: Path, app: tuple[Path, Path], margin: str | None
) -> None:
    # The default margin (500 ms) fires 600 ms after /next serves the event;
    # the handler sleeps 1.2 s: 600 ms for the watcher to wake on a loaded machine.
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "ERROR"}
    if margin is not None:
        env["STATICLAMBDA_SOFT_DEADLINE_MS"] = margin
    ours = serve(
        "runtime",
        tmp_path,
        "lambda_app.slow",
        [("req-slow", '{"seconds": 1.2}')],
        env,
        deadline_in_ms=1100,
    )
    assert ours.posted(response_path("req-slow")).body == b'"slept"'
    if margin == "0":
        assert ours.stdout == ""
        return
    # It shows at ERROR too: the record is the runtime's, at its own level.
    [record] = records(ours.stdout)
    assert ours.stdout.count("\n") == 1
    assert_recent_utc(record.pop("timestamp"))
    message = record.pop("message")
    assert record == {
        "level": "WARNING",
        "logger": "staticlambda.deadline",
        "requestId": "req-slow",
    }
    assert message.startswith("Soft deadline: request req-slow has ")
    assert frames_in(message) == ["slow", "sleeping_past_the_deadline"]


# --- under the official emulator ----------------------------------------------


@pytest.mark.rie
def test_soft_deadline_under_the_emulator(tmp_path: Path, app: tuple[Path, Path]) -> None:
    app_py = app[0]
    env = {
        **CREDENTIALS,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "2",
        "STATICLAMBDA_SOFT_DEADLINE_MS": "1000",
    }
    with emulator(tmp_path, "lambda_app.slow", env) as rie:
        assert rie.invoke('{"seconds": 1.5}') == (200, b'"slept"')
        log = rie_log(rie)
    [request_id] = re.findall(rf"^START RequestId: ({REQUEST_ID})", log, re.MULTILINE)
    [line] = [line for line in log.split("\n") if "Soft deadline" in line]
    soft = re.fullmatch(
        rf"\[WARNING\]\t{TEXT_STAMP}\t{request_id}\tSoft deadline: request {request_id} has "
        rf"(\d+) ms left before Lambda's timeout; the handler is at:\r"
        rf'  File "{app_py}", line 49, in slow\r'
        r"    return sleeping_past_the_deadline\(event\[\"seconds\"\]\)\r"
        rf'  File "{app_py}", line 53, in sleeping_past_the_deadline\r'
        r"    time\.sleep\(seconds\)",
        line,
    )
    assert soft, line
    assert 0 < int(soft.group(1)) <= 1000
    assert "Task timed out" not in log
    assert "staticlambda init:" not in log  # off by default
    assert_no_credentials(log)
