"""Handler output to the log stream: unbuffered, and with the request id on
``logging`` records in the form AWS's Python runtime writes.

Lambda reads the process's stdout and stderr line by line; a record that spans
lines keeps them together by writing its inner newlines as carriage returns,
which is how AWS's runtimes keep a stack trace one CloudWatch event. Each
record reaches the log whole, however many workers write at once
(runtime/logsink.py).

The runtime's own lines (``log_runtime``: a worker replaced, the Runtime API
failing, SIGTERM) are in the log format in force: with
``AWS_LAMBDA_LOG_FORMAT=JSON``, JSON records as the function's (logger
``staticlambda``; Lambda's filter reads their ``level``), else the
``staticlambda: ...`` text they always were; each has its level and is dropped
below ``AWS_LAMBDA_LOG_LEVEL``, when that is set. They go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

from runtime.errors import ErrorPayload
from runtime.logsink import streams

RUNTIME_TEXT_FORMAT = "staticlambda: %(message)s"
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


def use_unbuffered_streams() -> None:
    """``sys.stdout`` and ``sys.stderr`` write through to fds 1 and 2 at once: a
    line printed just before a timeout kill must not be lost in a buffer. The
    same two objects for the life of the process (runtime/logsink.py)."""
    sys.stdout, sys.stderr = streams.text_streams()


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
        root.setLevel(level_number(level))


def level_number(level: str) -> int:
    """``AWS_LAMBDA_LOG_LEVEL`` as a `logging` level; an unknown name is WARNING."""
    return _LEVELS.get(level.upper(), logging.WARNING)


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


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


# Not in `logging`'s tree (made directly, not by getLogger): the function's
# logging set-up (a root level, a handler, a disabled logger) cannot silence or
# re-route the runtime's own lines, which have their own level below.
_runtime_logger = logging.Logger("staticlambda")
_runtime_handler = _CurrentStderr()
_runtime_handler.setFormatter(logging.Formatter(RUNTIME_TEXT_FORMAT))
_runtime_logger.addHandler(_runtime_handler)


def setup_runtime_log(json_format: bool = False, level: str | None = None) -> None:
    """The runtime's own lines in the log format and level in force (until
    called: the plain text, every line)."""
    text = logging.Formatter(RUNTIME_TEXT_FORMAT)
    _runtime_handler.setFormatter(LambdaJsonFormatter() if json_format else text)
    _runtime_logger.setLevel(level_number(level) if level else logging.NOTSET)


def log_runtime(message: str, level: int = logging.ERROR, request_id: str | None = None) -> None:
    """A line from the runtime itself, not from user code: ERROR (the default)
    for what went wrong, INFO for what it does (SIGTERM), WARNING for what it
    does without. ``request_id``: the invoke it is about, in JSON's requestId."""
    extra = None if request_id is None else {"aws_request_id": request_id}
    _runtime_logger.log(level, message, extra=extra)
