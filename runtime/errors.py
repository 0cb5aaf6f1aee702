"""The runtime's errors, and the error payload Lambda expects.

    LambdaRuntimeError
    ├── ConfigError         the environment lacks what a runtime needs (exit 2)
    ├── RuntimeAPIError     the Runtime API failed us for good (exit 1)
    │   ├── APIUnavailable  not reached, connection broken, or a 5xx: /next tries
    │   │                   again, with a back-off, before it gives up
    │   ├── NoAnswer        a post unanswered in its time: the API hangs
    │   └── InvokeLost      a post for one invoke refused (400: aborted, 410: too
    │       │               late, ...) or not delivered: the invoke is lost, the
    │       │               runtime is not
    │       └── PayloadTooLarge  refused as too large (413)
    └── Fault               a failure to report to Lambda as `errorType`/`errorMessage`
                            (bad handler, bad event, bad result, bad context)

A ``Fault`` becomes an ``ErrorPayload``; so does any exception a handler raises.
Building one never raises, whatever the exception (a ``__str__`` that raises, a
class name that is not ASCII or holds CR/LF): the error path is what keeps the
invoke answered and the runtime alive.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from types import FrameType, TracebackType


class LambdaRuntimeError(Exception):
    """Base of every error this runtime raises itself."""


class ConfigError(LambdaRuntimeError):
    pass


class RuntimeAPIError(LambdaRuntimeError):
    pass


class APIUnavailable(RuntimeAPIError):
    pass


class NoAnswer(RuntimeAPIError):
    pass


class InvokeLost(RuntimeAPIError):
    pass


class PayloadTooLarge(InvokeLost):
    pass


class Fault(LambdaRuntimeError):
    """A failure reported to Lambda with Lambda's own error type."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


# Error types as AWS's Python runtime names them.
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"
# Lambda's, for an invoke whose runtime process died (here: a worker of
# runtime/workers.py, reported by the parent that outlived it).
RUNTIME_EXIT_ERROR = "Runtime.ExitError"
# Ours. In the error-type header in place of a class name that cannot be a
# header value (not ASCII, or with control characters); the body keeps the name.
UNNAMEABLE_ERROR_TYPE = "Runtime.UnnameableErrorType"
# Ours. The error posted when the full report could not be made.
REPORT_FAILED = "Runtime.ErrorReportFailed"
# What Python's own traceback module prints for an exception whose str() fails.
UNPRINTABLE = "<exception str() failed>"

_HEADER_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:
        return UNPRINTABLE
    return text if type(text) is str else UNPRINTABLE


def header_error_type(error_type: str) -> str:
    """``error_type`` if it can go in an HTTP header as it is, else a stable fallback."""
    return error_type if _HEADER_VALUE.fullmatch(error_type) else UNNAMEABLE_ERROR_TYPE


@dataclass(frozen=True)
class ErrorPayload:
    """The body of POST .../error and .../init/error."""

    error_message: str
    error_type: str
    request_id: str = ""
    stack_trace: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "requestId": self.request_id,
            "stackTrace": self.stack_trace,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_fault(cls, fault: Fault, request_id: str = "") -> ErrorPayload:
        return cls(fault.message, fault.error_type, request_id, fault.stack_trace)

    @classmethod
    def from_exception(cls, exc: BaseException, request_id: str = "") -> ErrorPayload:
        if isinstance(exc, Fault):
            return cls.from_fault(exc, request_id)
        return cls(
            safe_str(exc), type(exc).__name__, request_id, user_stack_trace(exc.__traceback__)
        )

    @classmethod
    def report_failed(cls, exc: BaseException, request_id: str = "") -> ErrorPayload:
        """What is posted when the full report of ``exc`` failed: nothing taken
        from the exception but its type, and that only when it can be a header."""
        error_type = header_error_type(type(exc).__name__)
        return cls(f"the runtime could not report this {error_type}", REPORT_FAILED, request_id)


Frame = tuple[str, int, str, str]  # file, line, function, source: awslambdaric's tuples


def user_frames(tb: TracebackType | None) -> list[Frame]:
    """The traceback's frames minus the runtime's own at its head: the user
    sees their code, as on AWS's runtime.

    Frames are told apart by module name, not file name, because a frozen
    binary's file names are not the source tree's.
    """
    while tb is not None and _is_runtime_frame(tb):
        tb = tb.tb_next
    frames = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
    folder = getattr(sys, "_MEIPASS", None)
    return [_frame(f, _in_tree(f.filename, folder)) for f in frames]


def _frame(frame: traceback.FrameSummary, path: str) -> Frame:
    line = _source_line(frame)
    if not line and path != frame.filename:
        # The source in the tree, found whatever the working directory now is.
        line = _source_line(traceback.FrameSummary(path, frame.lineno, frame.name))
    return (path, frame.lineno or 0, frame.name, line)


def _in_tree(filename: str, folder: object) -> str:
    """The path a frame's file has in the frozen bootstrap's tree.

    The function's own modules are imported from their files there and carry
    their real path, as in /var/task; the PYZ's modules (its dependencies) are
    compiled with a path relative to the tree (`pydantic/main.py`): theirs is
    made the absolute one their `__file__` says, as AWS's runtime prints it.
    """
    if not isinstance(folder, str) or os.path.isabs(filename) or filename.startswith("<"):
        return filename
    return os.path.join(folder, filename)


def _source_line(frame: traceback.FrameSummary) -> str:
    # Read through the module's loader, whose get_source may raise anything:
    # a frame without its line beats an error report that fails.
    try:
        return frame.line or ""
    except Exception:
        return ""


def user_stack_trace(tb: TracebackType | None) -> list[str]:
    """As ``traceback.format_list`` writes plain tuples (as awslambdaric does):
    no `^^^^` position lines, which Python 3.11+ adds for FrameSummary objects."""
    return traceback.format_list(user_frames(tb))


# X-Ray drops a cause larger than this; so does AWS's runtime, before sending.
XRAY_CAUSE_LIMIT = 1024 * 1024


def xray_error_cause(exc: BaseException, working_directory: str) -> str | None:
    """The `Lambda-Runtime-Function-XRay-Error-Cause` header, as AWS's Python
    runtime writes it, or None when it would be too large to send."""
    if isinstance(exc, Fault):
        # awslambdaric reports its own faults to X-Ray under this one type.
        error_type, frames = "LambdaValidationError", []
    else:
        error_type, frames = type(exc).__name__, user_frames(exc.__traceback__)
    cause = {
        "working_directory": working_directory,
        "exceptions": [
            {
                "message": exc.message if isinstance(exc, Fault) else safe_str(exc),
                "type": error_type,
                "stack": [
                    {"label": name, "path": path, "line": line} for path, line, name, _ in frames
                ],
            }
        ],
        "paths": sorted({path for path, _, _, _ in frames}),
    }
    text = json.dumps(cause)
    return text if len(text.encode()) < XRAY_CAUSE_LIMIT else None


def _is_runtime_frame(tb: TracebackType) -> bool:
    return is_runtime_frame(tb.tb_frame)


def is_runtime_frame(frame: FrameType) -> bool:
    """Whether ``frame`` runs this runtime's code (not the user's)."""
    # `python -m runtime` runs runtime/__main__.py as `__main__`: its spec still
    # names it `runtime.__main__`.
    f_globals = frame.f_globals
    name = getattr(f_globals.get("__spec__"), "name", None) or f_globals.get("__name__", "")
    return isinstance(name, str) and (name == "runtime" or name.startswith("runtime."))


# Lambda's limit on what POST .../error may carry, as on any response: 6 MiB.
# (The emulator's Runtime API reads 6 MiB + 100 bytes; a larger report it
# drops with the connection.)
MAX_ERROR_REPORT = 6 * 1024 * 1024
CUT_MARK = " [cut to fit Lambda's limit]"


def fit_error_report(error: ErrorPayload, limit: int = MAX_ERROR_REPORT) -> ErrorPayload:
    """``error`` if its JSON fits in ``limit`` bytes; else a copy cut to fit.
    The type and request id stay whole; the stack trace goes first, its
    outermost frames before the innermost (where it failed); then the end of
    the message. A cut says so, in the trace's first line and the message's end."""
    if len(error.to_json()) <= limit:
        return error
    error_type, request_id = error.error_type[:1024], error.request_id[:1024]
    frames = error.stack_trace
    mark = f"  ... {len(frames)} frames cut to fit Lambda's limit\n"
    budget = limit - len(ErrorPayload("", error_type, request_id, [mark]).to_json())
    message = error.error_message
    if _encoded(message) > budget:
        message = _cut(message, budget - _encoded(CUT_MARK)) + CUT_MARK
        return ErrorPayload(message, error_type, request_id, [mark] if frames else [])
    budget -= _encoded(message)
    kept = 0
    for frame in reversed(frames):
        cost = _encoded(frame) + 4  # its quotes and the separator
        if cost > budget:
            break
        budget -= cost
        kept += 1
    mark = f"  ... {len(frames) - kept} frames cut to fit Lambda's limit\n"  # never longer
    return ErrorPayload(message, error_type, request_id, [mark, *frames[len(frames) - kept :]])


def _encoded(text: str) -> int:
    """The bytes ``text`` takes inside a JSON string (ErrorPayload.to_json's)."""
    return len(json.dumps(text)) - 2


def _cut(text: str, budget: int) -> str:
    """The longest start of ``text`` (nearly) that takes at most ``budget``
    bytes in JSON, found by shrinking in proportion to the excess."""
    end = min(len(text), max(budget, 0))
    while end > 0:
        size = _encoded(text[:end])
        if size <= budget:
            break
        end = min(end - 1, end * budget // size)
    return text[:end]
