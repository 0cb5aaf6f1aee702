"""The error payload Lambda expects, the stack trace it carries (the user's
frames only, formatted as awslambdaric formats them) and how it is logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from awslambdaric import bootstrap as aws_bootstrap

from runtime.errors import ErrorPayload, Fault, user_stack_trace
from runtime.logs import log_error

WriteModule = Callable[[str, str], Path]  # the write_module fixture (conftest.py)

USER_CODE = """\
def handler(event, context):
    return helper(0)


def helper(zero):
    return 1 / zero
"""


def call_as(module_globals: dict[str, Any], fn: Callable[[], Any]) -> Any:
    """Call ``fn`` from a frame of the module that ``module_globals`` describes."""
    namespace = {**module_globals}
    exec("def call(fn):\n    return fn()\n", namespace)
    return namespace["call"](fn)


def raised_through(module_globals: dict[str, Any], fn: Callable[[], Any]) -> BaseException:
    """Call ``fn`` and catch what it raises in a frame of the module that
    ``module_globals`` describes, as runtime.loop catches a handler's exception:
    the traceback starts at that frame."""
    namespace = {**module_globals}
    exec(
        "def catch(fn):\n"
        "    try:\n"
        "        fn()\n"
        "    except BaseException as e:\n"
        "        return e\n",
        namespace,
    )
    error = namespace["catch"](fn)
    assert isinstance(error, BaseException)
    return error


def test_payload_has_exactly_the_four_fields_lambda_reads() -> None:
    payload = ErrorPayload("boom", "ValueError", "req-1", ['  File "a.py", line 1, in f\n'])
    assert json.loads(payload.to_json()) == {
        "errorMessage": "boom",
        "errorType": "ValueError",
        "requestId": "req-1",
        "stackTrace": ['  File "a.py", line 1, in f\n'],
    }
    assert list(payload.to_dict()) == ["errorMessage", "errorType", "requestId", "stackTrace"]


def test_init_error_payload_has_empty_request_id_and_trace() -> None:
    payload = ErrorPayload.from_exception(Fault("Runtime.HandlerNotFound", "Handler 'f' missing"))
    assert payload.to_dict() == {
        "errorMessage": "Handler 'f' missing",
        "errorType": "Runtime.HandlerNotFound",
        "requestId": "",
        "stackTrace": [],
    }


def test_user_exception_payload_without_runtime_frames(write_module: WriteModule) -> None:
    path = write_module("lambda_fn", USER_CODE)
    import lambda_fn

    error = raised_through({"__name__": "runtime.loop"}, partial(lambda_fn.handler, {}, None))
    payload = ErrorPayload.from_exception(error, "req-1")
    assert payload.to_dict() == {
        "errorMessage": "division by zero",
        "errorType": "ZeroDivisionError",
        "requestId": "req-1",
        # No `~~^~~` position lines: awslambdaric formats plain frame tuples.
        "stackTrace": [
            f'  File "{path}", line 2, in handler\n    return helper(0)\n',
            f'  File "{path}", line 6, in helper\n    return 1 / zero\n',
        ],
    }


def test_runtime_main_run_with_dash_m_is_a_runtime_frame(write_module: WriteModule) -> None:
    # `python -m runtime` runs runtime/__main__.py under the name `__main__`.
    write_module("lambda_fn", USER_CODE)
    import lambda_fn

    main_globals = {"__name__": "__main__", "__spec__": SimpleNamespace(name="runtime.__main__")}
    error = raised_through(main_globals, partial(lambda_fn.handler, {}, None))
    trace = user_stack_trace(error.__traceback__)
    assert [line.split(", in ")[1].split("\n")[0] for line in trace] == ["handler", "helper"]


def test_only_leading_runtime_frames_are_dropped(write_module: WriteModule) -> None:
    # A user's callback called back by runtime code keeps the frames around it.
    path = write_module("lambda_fn", "def handler(callback):\n    return callback()\n")
    import lambda_fn

    def inner() -> None:
        raise KeyError("k")

    error = raised_through(
        {"__name__": "runtime.loop"},
        partial(lambda_fn.handler, partial(call_as, {"__name__": "runtime.marshal"}, inner)),
    )
    trace = user_stack_trace(error.__traceback__)
    assert trace[0] == f'  File "{path}", line 2, in handler\n    return callback()\n'
    # handler, then call_as (this file), runtime.marshal's call and inner
    assert len(trace) == 4
    assert ErrorPayload.from_exception(error).error_message == "'k'"


def test_a_user_module_named_like_the_runtime_is_not_taken_for_it() -> None:
    error = raised_through({"__name__": "runtimes.app"}, lambda: 1 / 0)
    trace = user_stack_trace(error.__traceback__)
    assert [line.split(", in ")[1].split("\n")[0] for line in trace] == ["catch", "<lambda>"]


def test_empty_message_is_allowed_and_type_is_the_class_name() -> None:
    class OrderRejected(Exception):
        pass

    payload = ErrorPayload.from_exception(raised_through({}, lambda: _raise(OrderRejected())))
    assert (payload.error_type, payload.error_message) == ("OrderRejected", "")


def _raise(error: BaseException) -> None:
    raise error


# --- the log line -------------------------------------------------------------


def log_both(payload: ErrorPayload, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    log_error(payload)
    ours = capsys.readouterr().out
    aws_bootstrap.log_error(payload.to_dict(), aws_bootstrap.StandardLogSink())
    theirs = capsys.readouterr().out
    return ours, theirs


def test_error_is_logged_as_one_event_with_nbsp_indentation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = ErrorPayload(
        "boom", "ValueError", "req-1", ['  File "/var/task/app.py", line 3, in handler\n    x()\n']
    )
    ours, theirs = log_both(payload, capsys)
    assert ours == (
        "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
        '\u00a0\u00a0File "/var/task/app.py", line 3, in handler\r\u00a0\u00a0\u00a0\u00a0x()\n'
    )
    assert ours == theirs


@pytest.mark.parametrize(
    "payload",
    [
        ErrorPayload("Unable to unmarshal input: x", "Runtime.UnmarshalError", "req-1"),
        ErrorPayload("", "OrderRejected", "req-1", ["", '  File "a.py", line 1, in f\n']),
        ErrorPayload("no type", "", "req-1"),
    ],
)
def test_error_log_line_matches_awslambdaric(
    payload: ErrorPayload, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = log_both(payload, capsys)
    assert ours == theirs
    assert ours.count("\n") == 1 and ours.endswith("\n")


def test_fault_keeps_its_type_message_and_trace() -> None:
    fault = Fault("Runtime.UserCodeSyntaxError", "Syntax error in module 'm'", ["  File x\n"])
    assert ErrorPayload.from_exception(fault, "r").to_dict() == {
        "errorMessage": "Syntax error in module 'm'",
        "errorType": "Runtime.UserCodeSyntaxError",
        "requestId": "r",
        "stackTrace": ["  File x\n"],
    }
