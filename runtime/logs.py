"""Handler output to the log stream: unbuffered, and with the request id on
``logging`` records in the form AWS's Python runtime writes.

Lambda reads the process's stdout and stderr line by line; a record that spans
lines keeps them together by writing its inner newlines as carriage returns,
which is how AWS's runtimes keep a stack trace one CloudWatch event.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from typing import TextIO

from runtime.errors import ErrorPayload

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class RequestContext(logging.Filter):
    """Holds the current request id and stamps it on every record.

    One object, owned by the loop and handed to the log handler: the per-invoke
    state lives here rather than in a module global.
    """

    def __init__(self) -> None:
        super().__init__()
        self.request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class LambdaTextFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\r")


def unbuffered(fd: int) -> TextIO:
    """A text stream that writes through to ``fd`` at once: a line printed just
    before a timeout kill must not be lost in a buffer."""
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )


def setup_logging(request_context: RequestContext, level: str | None = None) -> None:
    sys.stdout = unbuffered(1)
    sys.stderr = unbuffered(2)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaTextFormatter())
    handler.addFilter(request_context)
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
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}


def log_error(error: ErrorPayload) -> None:
    """An error report as AWS's Python runtime logs it: one event, the type,
    the message, then the traceback (its heading even when it is empty), each
    line's indentation in no-break spaces, which CloudWatch does not trim."""
    description = "[ERROR]"
    if error.error_type:
        description += f" {error.error_type}"
    if error.error_message:
        description += (":" if error.error_type else "") + f" {error.error_message}"
    lines = [description, "Traceback (most recent call last):"]
    for element in error.stack_trace:
        lines.extend(_nbsp_indent(line) for line in element.splitlines() or [""])
    sys.stdout.write("\r".join(lines) + "\n")


def _nbsp_indent(line: str) -> str:
    stripped = line.lstrip(" ")
    return "\u00a0" * (len(line) - len(stripped)) + stripped


def log_runtime(message: str) -> None:
    """A line from the runtime itself, not from user code."""
    sys.stderr.write(f"staticlambda: {message}\n")
