"""Handler output to the log stream: unbuffered, and with the request id on
``logging`` records in the form AWS's Python runtime writes.

Lambda reads the process's stdout and stderr line by line; a record that spans
lines keeps them together by writing its inner newlines as carriage returns,
which is how AWS's runtimes keep a stack trace one CloudWatch event.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

from runtime.errors import ErrorPayload

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class RequestIdFilter(logging.Filter):
    """A log filter that stamps every record with the current invoke's request
    id (and tenant id), which the loop sets as each invoke starts.

    One object, owned by the loop and handed to the log handler: the per-invoke
    state lives here rather than in a module global.
    """

    def __init__(self) -> None:
        super().__init__()
        self.request_id = ""
        self.tenant_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        record.tenant_id = self.tenant_id
        return True


class LambdaTextFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\r")


class LambdaJsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields and names AWS's Python
    runtime writes (`timestamp`, `level`, `message`, `logger`, `requestId`,
    exception fields, and the record's `extra` attributes)."""

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(datefmt=JSON_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        exc_info = record.exc_info
        message = (
            record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        )
        error_type, error, error_tb = exc_info or (None, None, None)
        failed = error_type is not None
        result: dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": message,
            "logger": record.name,
            "stackTrace": traceback.format_tb(error_tb) if failed else None,
            "errorType": error_type.__name__ if error_type is not None else None,
            "errorMessage": str(error) if failed else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if failed else None,
            "tenantId": getattr(record, "tenant_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED_FIELDS and key not in result:
                result[key] = value
        return _json_dumps({k: v for k, v in result.items() if v is not None})


JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# LogRecord's own attributes: everything else on a record came from `extra=`.
_RESERVED_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "aws_request_id",
    "tenant_id",
    "message",
    "asctime",
    "taskName",
}


def _json_dumps(value: Any) -> str:
    # default=str: a value JSON cannot hold is written as text rather than the
    # whole record lost, as AWS's runtime does.
    return json.dumps(value, ensure_ascii=False, default=str)


def unbuffered(fd: int) -> TextIO:
    """A text stream that writes through to ``fd`` at once: a line printed just
    before a timeout kill must not be lost in a buffer."""
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )


def use_unbuffered_streams() -> None:
    sys.stdout = unbuffered(1)
    sys.stderr = unbuffered(2)


def setup_logging(
    request_id_filter: RequestIdFilter, json_format: bool = False, level: str | None = None
) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaJsonFormatter() if json_format else LambdaTextFormatter())
    handler.addFilter(request_id_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # The runtime's own requests to the Runtime API are not the function's log:
    # at INFO httpx would write two lines per invoke (AWS's runtime writes none).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # As on AWS's Python runtime, the root logger keeps Python's default level
    # (WARNING) unless the function's log level (advanced logging controls) is set.
    if level:
        root.setLevel(_LEVELS.get(level.upper(), logging.WARNING))


_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}


def log_error(error: ErrorPayload, json_format: bool = False) -> None:
    """An error report as AWS's Python runtime logs it, as one log event.

    Text: the type, the message, then the traceback (its heading even when it
    is empty), each line's indentation in no-break spaces, which CloudWatch
    does not trim. JSON: one object with the error payload's fields.
    """
    if json_format:
        timestamp = time.strftime(JSON_DATE_FORMAT, time.gmtime())
        record = {"timestamp": timestamp, "level": "ERROR", **error.to_dict()}
        sys.stdout.write(_json_dumps(record) + "\n")
        return
    description = "[ERROR]"
    if error.error_type:
        description += f" {error.error_type}"
    if error.error_message:
        description += (":" if error.error_type else "") + f" {error.error_message}"
    lines = [description, "Traceback (most recent call last):"]
    for element in error.stack_trace:
        lines.extend(_nbsp_indent(line) for line in element.splitlines() or [""])
    # A message over several lines too: awslambdaric leaves its newlines to the
    # telemetry frame, which keeps them one event; on stdout they would split it.
    sys.stdout.write("\r".join(lines).replace("\n", "\r") + "\n")


def _nbsp_indent(line: str) -> str:
    stripped = line.lstrip(" ")
    return "\u00a0" * (len(line) - len(stripped)) + stripped


def log_runtime(message: str) -> None:
    """A line from the runtime itself, not from user code."""
    sys.stderr.write(f"staticlambda: {message}\n")
