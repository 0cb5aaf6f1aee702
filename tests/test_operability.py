"""Operability: Lambda's log formats and levels, the X-Ray error cause, the soft
deadline and the init breakdown.

Three layers. The formatters beside awslambdaric's own (AWS's Python runtime)
on the same record. The runtime as a process against the fake Runtime API,
most of the time beside awslambdaric serving the same events, so that each log
line and each header is compared with what AWS's runtime writes. And the
runtime under the official emulator.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.bootstrap import make_xray_fault
from awslambdaric.lambda_runtime_log_utils import JsonFormatter as AwsJsonFormatter
from awslambdaric.lambda_runtime_marshaller import to_json as aws_to_json
from fake_runtime_api import FakeRuntimeAPI, Recorded, error_path, response_path

from build.rie import Emulator
from runtime import headers
from runtime.client import RuntimeAPIClient
from runtime.config import Config
from runtime.deadline import SoftDeadline
from runtime.errors import XRAY_CAUSE_LIMIT, xray_error_cause
from runtime.inittrace import InitTrace, parent_of, process_start
from runtime.logs import LambdaJsonFormatter, LambdaTextFormatter, RequestIdFilter
from runtime.loop import InvokeLoop

WriteModule = Callable[[str, str], Path]  # the write_module fixture (conftest.py)

ROOT = Path(__file__).resolve().parent.parent
TEXT_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
JSON_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NBSP = "\u00a0"
XRAY = headers.FUNCTION_XRAY_ERROR_CAUSE
# awslambdaric's Text format, as bootstrap._setup_logging builds it.
AWS_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
# Distinctive, so that any piece of them in a log is found.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAQUOKKA7ZEBRA4242",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/okapiWALRUSsecret0000",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEPangolinSessionTokenXYZZY",
}

APP = """\
import logging
import os
import time

from lambda_orders import check

log = logging.getLogger("orders")
PRINTED = 'printed as is: {"not": "a record"}\\tand a tab'


def levels(event, context):
    print(PRINTED)
    log.debug("debug %s", event["n"])
    log.info("info %s", event["n"], extra={"order_id": event["n"], "tags": ["a", "b"]})
    log.warning("warning %s", event["n"])
    log.error("error %s", event["n"])
    log.critical("critical %s", event["n"])
    return "ok"


def logs_exception(event, context):
    try:
        divide(1, 0)
    except ZeroDivisionError:
        log.exception("caught it\\nover two lines")
    return "ok"


def divide(a, b):
    return a / b


def fail(event, context):
    check(event["order"])


def huge(event, context):
    raise ValueError("x" * event["n"])


def secretive(event, context):
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    log.debug("has credentials: %s", all(os.environ.get(name) for name in names))
    log.info("about to fail")
    raise PermissionError("refused\\nby policy")


def slow(event, context):
    return sleeping_past_the_deadline(event["seconds"])


def sleeping_past_the_deadline(seconds):
    time.sleep(seconds)
    return "slept"
"""

ORDERS = """\
def check(order):
    raise ValueError(f"cannot take order {order}\\nsecond line")
"""
PRINTED = 'printed as is: {"not": "a record"}\tand a tab'  # lambda_app's print


@pytest.fixture
def app(write_module: WriteModule) -> tuple[Path, Path]:
    """The user code, written into tmp_path (the runtime's cwd): its two files."""
    return write_module("lambda_app", APP), write_module("lambda_orders", ORDERS)


# --- the runtime as a process, beside awslambdaric ----------------------------


@dataclass(frozen=True)
class Served:
    """What one runtime process wrote, and what the fake Runtime API received."""

    stdout: str
    stderr: str
    requests: list[Recorded]

    def posted(self, path: str) -> Recorded:
        [request] = [r for r in self.requests if r.path == path]
        return request


def serve(
    runtime: str,
    cwd: Path,
    handler: str,
    events: list[tuple[str, str]],
    env: dict[str, str] | None = None,
    event_headers: dict[str, str] | None = None,
    deadline_in_ms: int = 60_000,
) -> Served:
    """``python -m <runtime> <handler>`` on (request id, body) events until
    they run out (then /next answers 500 and the process ends). Each event's
    deadline is ``deadline_in_ms`` after /next serves it."""
    with FakeRuntimeAPI() as api:
        for request_id, body in events:
            api.add_event(body, request_id, event_headers, deadline_in_ms)
        environ = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            **(env or {}),
        }
        done = subprocess.run(
            [sys.executable, "-m", runtime, handler],
            cwd=cwd,
            env=environ,
            capture_output=True,
            timeout=30,
            check=False,
        )
    # Decoded by hand: text mode would turn the \r inside a log event into \n.
    stdout = done.stdout.decode()
    if runtime == "awslambdaric":
        # Its C++ client's own line when /next fails at the end (not always at
        # a line's start: awslambdaric ends a logged traceback without a newline).
        stdout = re.sub(r"\[ERROR\] \[\d+\] LAMBDA_RUNTIME [^\n]*\n", "", stdout)
    return Served(stdout, done.stderr.decode(), api.requests)


def both(
    cwd: Path,
    handler: str,
    events: list[tuple[str, str]],
    env: dict[str, str] | None = None,
) -> tuple[Served, Served]:
    """This runtime, then awslambdaric, on the same events: (ours, theirs)."""
    ours = serve("runtime", cwd, handler, events, env)
    theirs = serve("awslambdaric", cwd, handler, events, env)
    return ours, theirs


def timeless(log: str) -> str:
    """A log with its timestamps (both formats) replaced by one token."""
    log = re.sub(TEXT_STAMP, "<time>", log)
    return re.sub(rf'"timestamp": "{JSON_STAMP}"', '"timestamp": "<time>"', log)


def records(stdout: str) -> list[dict[str, Any]]:
    """Every JSON log record on stdout, as a log query (Powertools, Logs
    Insights) sees them: one per line, other lines skipped."""
    return [json.loads(line) for line in stdout.split("\n") if line.startswith("{")]


def assert_recent_utc(timestamp: str) -> None:
    assert re.fullmatch(JSON_STAMP, timestamp), timestamp
    at = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(at - time.time()) < 60


# --- formatters, record for record with awslambdaric --------------------------


def make_record(
    level: int,
    msg: Any,
    args: tuple[Any, ...] = (),
    exc_info: Any = None,
    extra: dict[str, Any] | None = None,
    tenant_id: str | None = None,
) -> logging.LogRecord:
    record = logging.getLogger("orders").makeRecord(
        "orders", level, "/var/task/app.py", 12, msg, args, exc_info, "handler", extra
    )
    record.aws_request_id = "req-1"  # what the handler's filter stamps
    record.tenant_id = tenant_id
    return record


def format_both(
    record: logging.LogRecord, ours: logging.Formatter, theirs: logging.Formatter
) -> tuple[str, str]:
    """The same record (copies: formatters change it) through each formatter."""
    theirs.converter = time.gmtime  # awslambdaric sets it on logging.Formatter
    copy = logging.makeLogRecord(dict(record.__dict__))
    return ours.format(record), theirs.format(copy)


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (25, "INFO"),  # custom levels round down to Lambda's, as awslambdaric does
        (60, "CRITICAL"),
    ],
)
def test_json_record_has_lambda_s_fields_as_awslambdaric_writes_them(level: int, name: str) -> None:
    when = datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)
    record = make_record(
        level, "order %s taken", ("o-1",), extra={"order_id": 7, "tags": ["a"], "when": when}
    )
    ours, theirs = format_both(record, LambdaJsonFormatter(), AwsJsonFormatter())
    assert ours + "\n" == theirs
    assert json.loads(ours) == {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        "level": name,
        "message": "order o-1 taken",
        "logger": "orders",
        "requestId": "req-1",
        "order_id": 7,
        "tags": ["a"],
        "when": "2026-11-26 08:30:00+00:00",  # not JSON: written as text, not lost
    }
    assert list(json.loads(ours))[:5] == ["timestamp", "level", "message", "logger", "requestId"]


@pytest.mark.parametrize(
    ("record", "fields"),
    [
        (
            make_record(logging.INFO, {"event": "paid", "amount": 3}),
            {"message": {"event": "paid", "amount": 3}},
        ),
        (make_record(logging.INFO, "for a tenant", tenant_id="t-9"), {"tenantId": "t-9"}),
        (make_record(logging.INFO, "two\nlines"), {"message": "two\nlines"}),
    ],
    ids=["dict message", "tenant id", "multi-line message"],
)
def test_json_record_variants_match_awslambdaric(
    record: logging.LogRecord, fields: dict[str, Any]
) -> None:
    ours, theirs = format_both(record, LambdaJsonFormatter(), AwsJsonFormatter())
    assert ours + "\n" == theirs
    assert fields.items() <= json.loads(ours).items()
    assert "\n" not in ours  # one line on stdout, so one log event


def divide(a: int, b: int) -> float:
    return a / b


def caught_record(message: str) -> tuple[logging.LogRecord, Any]:
    try:
        divide(1, 0)
    except ZeroDivisionError:
        exc_info = sys.exc_info()
    return make_record(logging.ERROR, message, exc_info=exc_info), exc_info


def test_json_record_with_an_exception_carries_the_error_fields() -> None:
    record, (_, _, tb) = caught_record("caught it")
    ours, theirs = format_both(record, LambdaJsonFormatter(), AwsJsonFormatter())
    assert ours + "\n" == theirs
    assert json.loads(ours) == {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        "level": "ERROR",
        "message": "caught it",
        "logger": "orders",
        "stackTrace": traceback.format_tb(tb),
        "errorType": "ZeroDivisionError",
        "errorMessage": "division by zero",
        "requestId": "req-1",
        "location": "/var/task/app.py:handler:12",
    }
    assert "\n" not in ours


def text_formatter() -> logging.Formatter:
    return logging.Formatter(AWS_TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
def test_text_record_is_awslambdaric_s_form(level: str) -> None:
    record = make_record(logging.getLevelName(level), "order %s taken", ("o-1",))
    ours, theirs = format_both(record, LambdaTextFormatter(), text_formatter())
    assert re.fullmatch(rf"\[{level}\]\t{TEXT_STAMP}\treq-1\torder o-1 taken", ours), ours
    assert (
        ours.split("\t")[1]
        == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z"
    )
    assert ours + "\n" == theirs


def test_text_record_with_a_traceback_is_one_line() -> None:
    record, _ = caught_record("caught it\nover two lines")
    ours, theirs = format_both(record, LambdaTextFormatter(), text_formatter())
    # awslambdaric leaves the newlines to the telemetry frame; on stdout they are \r.
    assert ours == theirs.replace("\n", "\r")
    assert "\n" not in ours
    assert re.fullmatch(
        rf"\[ERROR\]\t{TEXT_STAMP}\treq-1\tcaught it\rover two lines\r"
        r"Traceback \(most recent call last\):\r.*\rZeroDivisionError: division by zero",
        ours,
    ), ours


# --- formats and levels, end to end against the fake Runtime API --------------

ALL = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@pytest.mark.parametrize(
    ("log_format", "log_level", "shown"),
    [
        ("Text", None, ["WARNING", "ERROR", "CRITICAL"]),  # Python's default level
        ("Text", "ERROR", ["ERROR", "CRITICAL"]),
        ("Text", "DEBUG", ALL),
        ("Text", "TRACE", ALL),
        (None, "INFO", ALL[1:]),  # Text is the default format
        ("JSON", None, ["WARNING", "ERROR", "CRITICAL"]),
        ("JSON", "ERROR", ["ERROR", "CRITICAL"]),
        ("JSON", "DEBUG", ALL),
    ],
)
def test_format_and_level_as_awslambdaric(
    tmp_path: Path,
    app: tuple[Path, Path],
    log_format: str | None,
    log_level: str | None,
    shown: list[str],
) -> None:
    env = {}
    if log_format:
        env["AWS_LAMBDA_LOG_FORMAT"] = log_format
    if log_level:
        env["AWS_LAMBDA_LOG_LEVEL"] = log_level
    ours, theirs = both(tmp_path, "lambda_app.levels", [("req-a", '{"n": 1}')], env)
    assert timeless(ours.stdout) == timeless(theirs.stdout)
    printed, *lines, end = ours.stdout.split("\n")
    assert (printed, end) == (PRINTED, "")
    assert len(lines) == len(shown)
    for level, line in zip(shown, lines):
        if log_format == "JSON":
            record = json.loads(line)
            assert (record["level"], record["message"]) == (level, f"{level.lower()} 1")
        else:
            assert re.fullmatch(rf"\[{level}\]\t{TEXT_STAMP}\treq-a\t{level.lower()} 1", line)
    assert ours.posted(response_path("req-a")).body == b'"ok"'


def test_json_records_carry_the_request_id_and_extra_fields_and_print_is_untouched(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    ours = serve(
        "runtime",
        tmp_path,
        "lambda_app.levels",
        [("req-a", '{"n": 1}'), ("req-b", '{"n": 2}')],
        env,
    )
    lines = ours.stdout.split("\n")
    assert lines[0] == lines[6] == PRINTED and lines[-1] == ""
    logged = records(ours.stdout)
    assert len(logged) == 10
    for record, (request_id, level) in zip(
        logged, [(r, level) for r in ("req-a", "req-b") for level in ALL]
    ):
        assert_recent_utc(record["timestamp"])
        n = {"req-a": 1, "req-b": 2}[request_id]
        expected: dict[str, Any] = {
            "level": level,
            "message": f"{level.lower()} {n}",
            "logger": "orders",
            "requestId": request_id,
        }
        if level == "INFO":
            expected.update(order_id=n, tags=["a", "b"])
        assert {k: v for k, v in record.items() if k != "timestamp"} == expected
    # A query by level and request id, as one runs on CloudWatch.
    assert [
        r["message"] for r in logged if r["level"] == "ERROR" and r["requestId"] == "req-b"
    ] == ["error 2"]
    assert [r["order_id"] for r in logged if "order_id" in r] == [1, 2]
    assert "staticlambda init:" not in ours.stderr  # the init trace is off by default


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_logged_exception_is_one_event_as_awslambdaric_writes_it(
    tmp_path: Path, app: tuple[Path, Path], log_format: str
) -> None:
    env = {"AWS_LAMBDA_LOG_FORMAT": log_format}
    ours, theirs = both(tmp_path, "lambda_app.logs_exception", [("req-a", "{}")], env)
    assert ours.stdout.count("\n") == 1 and ours.stdout.endswith("\n")
    if log_format == "JSON":
        assert timeless(ours.stdout) == timeless(theirs.stdout)
        [record] = records(ours.stdout)
        assert (record["message"], record["errorType"], record["requestId"]) == (
            "caught it\nover two lines",
            "ZeroDivisionError",
            "req-a",
        )
        assert record["location"] == f"{app[0]}:logs_exception:25"
        assert [line.split(", in ")[-1].split("\n")[0] for line in record["stackTrace"]] == [
            "logs_exception",
            "divide",
        ]
    else:
        # awslambdaric writes this record without its final newline on stdout.
        assert timeless(ours.stdout) == timeless(theirs.stdout).replace("\n", "\r") + "\n"
        assert ours.stdout.startswith("[ERROR]\t")
        assert "\tcaught it\rover two lines\rTraceback (most recent call last):\r" in ours.stdout


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_handler_error_is_one_log_event_as_awslambdaric_writes_it(
    tmp_path: Path, app: tuple[Path, Path], log_format: str
) -> None:
    app_py, orders_py = app
    env = {"AWS_LAMBDA_LOG_FORMAT": log_format}
    ours, theirs = both(tmp_path, "lambda_app.fail", [("req-a", '{"order": 1}')], env)
    stack = [
        f'  File "{app_py}", line 34, in fail\n    check(event["order"])\n',
        f'  File "{orders_py}", line 2, in check\n'
        '    raise ValueError(f"cannot take order {order}\\nsecond line")\n',
    ]
    assert ours.stdout.count("\n") == 1 and ours.stdout.endswith("\n")
    if log_format == "JSON":
        assert timeless(ours.stdout) == timeless(theirs.stdout)
        record = json.loads(ours.stdout)
        assert list(record) == [
            "timestamp",
            "level",
            "errorMessage",
            "errorType",
            "requestId",
            "stackTrace",
        ]
        assert_recent_utc(record.pop("timestamp"))
        assert record == {
            "level": "ERROR",
            "errorMessage": "cannot take order 1\nsecond line",
            "errorType": "ValueError",
            "requestId": "req-a",
            "stackTrace": stack,
        }
    else:
        # awslambdaric leaves the message's newline to the telemetry frame.
        assert ours.stdout == theirs.stdout[:-1].replace("\n", "\r") + "\n"
        assert ours.stdout == (
            "[ERROR] ValueError: cannot take order 1\rsecond line\r"
            "Traceback (most recent call last):\r"
            f'{NBSP * 2}File "{app_py}", line 34, in fail\r{NBSP * 4}check(event["order"])\r'
            f'{NBSP * 2}File "{orders_py}", line 2, in check\r'
            f'{NBSP * 4}raise ValueError(f"cannot take order {{order}}\\nsecond line")\n'
        )
    assert ours.posted(error_path("req-a")).json()["stackTrace"] == stack


# --- the X-Ray error cause ----------------------------------------------------


def test_xray_cause_of_a_handler_exception_is_awslambdaric_s(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    app_py, orders_py = app
    ours, theirs = both(tmp_path, "lambda_app.fail", [("req-a", '{"order": 1}')])
    posted, their_posted = ours.posted(error_path("req-a")), theirs.posted(error_path("req-a"))
    cause = json.loads(posted.headers[XRAY])
    assert cause == {
        "working_directory": str(tmp_path),
        "exceptions": [
            {
                "message": "cannot take order 1\nsecond line",
                "type": "ValueError",
                "stack": [
                    {"label": "fail", "path": str(app_py), "line": 34},
                    {"label": "check", "path": str(orders_py), "line": 2},
                ],
            }
        ],
        "paths": sorted([str(app_py), str(orders_py)]),
    }
    their_cause = json.loads(their_posted.headers[XRAY])
    assert cause == {**their_cause, "paths": sorted(their_cause["paths"])}  # theirs: set order
    assert posted.headers[XRAY].isascii() and "\n" not in posted.headers[XRAY]
    assert posted.body == their_posted.body
    assert posted.headers[headers.FUNCTION_ERROR_TYPE] == "ValueError"


def test_xray_cause_of_a_runtime_fault_is_a_lambda_validation_error(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    ours, theirs = both(tmp_path, "lambda_app.levels", [("req-a", "{not json")])
    posted = ours.posted(error_path("req-a"))
    message = posted.json()["errorMessage"]
    assert message.startswith("Unable to unmarshal input: Expecting property name")
    cause = json.loads(posted.headers[XRAY])
    assert cause == {
        "working_directory": str(tmp_path),
        "exceptions": [{"message": message, "type": "LambdaValidationError", "stack": []}],
        "paths": [],
    }
    # awslambdaric's message is simplejson's wording; the rest is the same.
    their_cause = json.loads(theirs.posted(error_path("req-a")).headers[XRAY])
    their_cause["exceptions"][0]["message"] = message
    assert cause == their_cause
    assert posted.headers[headers.FUNCTION_ERROR_TYPE] == "Runtime.UnmarshalError"


def test_xray_cause_over_its_size_limit_is_dropped_and_the_error_still_posted(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    events = [("req-big", json.dumps({"n": XRAY_CAUSE_LIMIT})), ("req-small", '{"n": 3}')]
    ours, theirs = both(tmp_path, "lambda_app.huge", events)
    for served in (ours, theirs):
        big = served.posted(error_path("req-big"))
        assert big.headers[XRAY] is None
        assert big.json()["errorMessage"] == "x" * XRAY_CAUSE_LIMIT
        # The runtime goes on, and the next error has its cause again.
        small = served.posted(error_path("req-small"))
        assert json.loads(small.headers[XRAY])["exceptions"][0]["message"] == "xxx"
    assert ours.posted(error_path("req-big")).body == theirs.posted(error_path("req-big")).body


def test_xray_cause_size_limit_is_exclusive_as_in_awslambdaric() -> None:
    """At one byte under the limit the cause is sent; at the limit it is not.
    (Checked here, not over HTTP: the fake API's header lines stop at 64 KiB.)"""
    overhead = len(xray_error_cause(ValueError(""), "/var/task") or "")
    under = ValueError("x" * (XRAY_CAUSE_LIMIT - 1 - overhead))
    cause = xray_error_cause(under, "/var/task")
    assert cause is not None and len(cause.encode()) == XRAY_CAUSE_LIMIT - 1
    assert cause == aws_to_json(make_xray_fault("ValueError", str(under), "/var/task", []))
    at = ValueError("x" * (XRAY_CAUSE_LIMIT - overhead))
    assert xray_error_cause(at, "/var/task") is None


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
    log = DeadlineLog(
        logging.getLogger(f"test_operability.{request.node.name}"), [], threading.Lock()
    )
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


# --- the init breakdown -------------------------------------------------------


def test_process_start_and_parent_of_this_process() -> None:
    me, parent = os.getpid(), os.getppid()
    start = process_start(me)
    assert start is not None and 0 < start <= time.clock_gettime(time.CLOCK_BOOTTIME)
    assert parent_of(me) == parent
    parent_start = process_start(parent)
    assert parent_start is not None and parent_start <= start
    beyond_pid_max = 2**22 + 1  # Linux's highest pid_max is 2**22
    assert (process_start(beyond_pid_max), parent_of(beyond_pid_max)) == (None, None)


def test_process_start_reads_past_a_command_name_with_parentheses(tmp_path: Path) -> None:
    sleep = tmp_path / "a) b (c"  # /proc/<pid>/stat holds it as "(a) b (c)"
    sleep.symlink_to("/bin/sleep")
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    child = subprocess.Popen([str(sleep), "5"])
    try:
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().split(" ", 1)[1].startswith("(a) b (c) ")
        start = process_start(child.pid)
        assert start is not None
        assert before - 0.02 <= start <= time.clock_gettime(time.CLOCK_BOOTTIME)
        assert parent_of(child.pid) == os.getpid()
    finally:
        child.kill()
        child.wait()


INIT_LINE = re.compile(r"staticlambda init: +(\d+\.\d) ms  (.+?)  \(from \+(\d+\.\d) ms\)")
IN_ALL = re.compile(r"staticlambda init: +(\d+\.\d) ms  in all, to the first /next")


def init_phases(log: str) -> tuple[list[tuple[float, str, float]], float]:
    """(ms, phase, from ms) for each phase line, and the "in all" ms."""
    phases = [(float(ms), phase, float(at)) for ms, phase, at in INIT_LINE.findall(log)]
    [total] = IN_ALL.findall(log)
    return phases, float(total)


def test_init_trace_report_lines(capsys: pytest.CaptureFixture[str]) -> None:
    trace = InitTrace(True)
    trace.mark("Runtime API client")
    time.sleep(0.02)
    trace.mark("handler import: app.handler")
    trace.mark("first /next")
    trace.report({})
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[-1] == "" and all(line.startswith("staticlambda init: ") for line in lines[:-1])
    phases, total = init_phases(err)
    assert [phase for _, phase, _ in phases] == [
        "Python: interpreter start, imports",  # from /proc: this process's start
        "Runtime API client",
        "handler import: app.handler",
    ]
    assert phases[0][2] == 0.0 and phases[1][0] >= 20.0
    # Each phase starts where the one before ends; together they are the whole.
    for (ms, _, at), (_, _, next_at) in zip(phases, phases[1:]):
        assert abs(at + ms - next_at) <= 0.2
    assert abs(sum(ms for ms, _, _ in phases) - total) <= 5.0
    assert IN_ALL.fullmatch(lines[-2])


def test_init_trace_off_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    trace = InitTrace(False)
    trace.mark("Runtime API client")
    trace.report({})
    assert (trace.marks, capsys.readouterr().err) == ([], "")


def test_init_trace_is_the_first_lines_on_stderr(tmp_path: Path, app: tuple[Path, Path]) -> None:
    env = {"STATICLAMBDA_INIT_TRACE": "1"}
    ours = serve("runtime", tmp_path, "lambda_app.levels", [("req-a", '{"n": 1}')], env)
    lines = ours.stderr.split("\n")
    phases = [INIT_LINE.fullmatch(line) for line in lines[:3]]
    assert [phase[2] if phase else line for phase, line in zip(phases, lines)] == [
        "Python: interpreter start, imports",
        "Runtime API client",
        "handler import: lambda_app.levels",
    ]
    assert IN_ALL.fullmatch(lines[3])
    assert lines[4].startswith("staticlambda: the Runtime API failed")  # no more events
    assert "staticlambda init" not in ours.stdout


# --- credentials --------------------------------------------------------------


def assert_no_credentials(*logs: str) -> None:
    for log in logs:
        for value in CREDENTIALS.values():
            assert value not in log
        for piece in ("QUOKKA", "WALRUS", "Pangolin"):
            assert piece.lower() not in log.lower()


def test_credentials_never_appear_in_the_logs(tmp_path: Path, app: tuple[Path, Path]) -> None:
    env = {
        **CREDENTIALS,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "STATICLAMBDA_INIT_TRACE": "1",
    }
    ours = serve("runtime", tmp_path, "lambda_app.secretive", [("req-a", "{}")], env)
    logged = records(ours.stdout)
    # The handler saw them, and its debug line, its info line and the error are there.
    assert [r.get("message", r.get("errorMessage")) for r in logged] == [
        "has credentials: True",
        "about to fail",
        "refused\nby policy",
    ]
    assert "staticlambda init:" in ours.stderr
    error = ours.posted(error_path("req-a"))
    assert_no_credentials(ours.stdout, ours.stderr, error.headers[XRAY] or "")


# --- under the official emulator ----------------------------------------------


def emulator(cwd: Path, handler: str, env: dict[str, str]) -> Emulator:
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return Emulator(
        [sys.executable, "-m", "runtime", handler], env=environ, cwd=cwd, log_path=cwd / "rie.log"
    )


def rie_log(rie: Emulator) -> str:
    """The emulator's log with the runtime's output in it, its \r kept as written."""
    return rie.log_path.read_bytes().decode(errors="replace")


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


@pytest.mark.rie
def test_init_trace_and_no_credentials_under_the_emulator(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    env = {
        **CREDENTIALS,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "STATICLAMBDA_INIT_TRACE": "1",
    }
    with emulator(tmp_path, "lambda_app.secretive", env) as rie:
        status, body = rie.invoke("{}")
        log = rie_log(rie)
    error = json.loads(body)
    assert (status, error["errorType"], error["errorMessage"]) == (
        200,
        "PermissionError",
        "refused\nby policy",
    )
    # The emulator starts the runtime on the first invoke: the breakdown comes
    # after that invoke's START, within INIT, before the invoke reaches it.
    phases, total = init_phases(log)
    assert [phase for _, phase, _ in phases] == [
        "Python: interpreter start, imports",
        "Runtime API client",
        "handler import: lambda_app.secretive",
    ]
    assert 0 < total < 10_000
    assert abs(sum(ms for ms, _, _ in phases) - total) <= 5.0
    assert log.index("INIT START") < log.index("staticlambda init:") < log.index("INVOKE START")
    in_all = IN_ALL.search(log)
    assert in_all is not None and in_all.end() < log.index('{"timestamp"')
    request_id = error["requestId"]
    assert [(r["level"], r["requestId"]) for r in records(log)] == [
        ("DEBUG", request_id),
        ("INFO", request_id),
        ("ERROR", request_id),
    ]
    assert records(log)[0]["message"] == "has credentials: True"
    assert_no_credentials(log, body.decode())
