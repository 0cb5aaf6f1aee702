"""runtime/logs.py: Lambda's log formats (Text and JSON) and levels, record for
record beside awslambdaric's own formatters (AWS's Python runtime) on the same
record, then end to end: the runtime as a process against the fake Runtime
API beside awslambdaric serving the same events, each log line compared; and
no credential ever in a log."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.lambda_runtime_log_utils import JsonFormatter as AwsJsonFormatter
from fake_runtime_api import error_path, response_path
from support import (
    CREDENTIALS,
    JSON_STAMP,
    PRINTED,
    TEXT_STAMP,
    assert_no_credentials,
    assert_recent_utc,
    both,
    records,
    serve,
)

from runtime import headers
from runtime.logs import LambdaJsonFormatter, LambdaTextFormatter

NBSP = "\u00a0"
# awslambdaric's Text format, as bootstrap._setup_logging builds it.
AWS_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


def timeless(log: str) -> str:
    """A log with its timestamps (both formats) replaced by one token."""
    log = re.sub(TEXT_STAMP, "<time>", log)
    return re.sub(rf'"timestamp": "{JSON_STAMP}"', '"timestamp": "<time>"', log)


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


# --- credentials --------------------------------------------------------------


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
    xray_cause = error.headers[headers.FUNCTION_XRAY_ERROR_CAUSE]
    assert_no_credentials(ours.stdout, ours.stderr, xray_cause or "")
