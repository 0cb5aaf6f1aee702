"""runtime/errors.py: the error payload Lambda expects, the stack trace it
carries (the user's frames only, formatted as awslambdaric formats them), how
it is logged, and the X-Ray error cause posted beside it (beside
awslambdaric's, the runtime as a process against the fake Runtime API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from awslambdaric import bootstrap as aws_bootstrap
from awslambdaric.bootstrap import make_xray_fault
from awslambdaric.lambda_runtime_marshaller import to_json as aws_to_json
from fake_runtime_api import FakeRuntimeAPI, error_path
from support import Calls, WriteModule, both, run_loop

from runtime import headers
from runtime.errors import (
    CUT_MARK,
    MAX_ERROR_REPORT,
    XRAY_CAUSE_LIMIT,
    ErrorPayload,
    Fault,
    fit_error_report,
    user_stack_trace,
    xray_error_cause,
)
from runtime.logs import log_error

XRAY = headers.FUNCTION_XRAY_ERROR_CAUSE

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


def test_a_frozen_module_s_frame_is_named_in_the_tree_with_its_source_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyInstaller compiles the PYZ's modules with a path relative to its tree
    # (sys._MEIPASS); their __file__, and so awslambdaric's frame, is the
    # absolute one. The source line comes from the tree whatever the working
    # directory is.
    tree = tmp_path / "_internal"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text(USER_CODE)
    module: dict[str, Any] = {"__name__": "pkg.mod"}
    exec(compile(USER_CODE, "pkg/mod.py", "exec"), module)
    monkeypatch.setattr("sys._MEIPASS", str(tree), raising=False)
    monkeypatch.chdir(tmp_path)
    error = raised_through({"__name__": "runtime.loop"}, partial(module["handler"], {}, None))
    assert user_stack_trace(error.__traceback__) == [
        f'  File "{tree}/pkg/mod.py", line 2, in handler\n    return helper(0)\n',
        f'  File "{tree}/pkg/mod.py", line 6, in helper\n    return 1 / zero\n',
    ]
    # Frames that are not files keep their names: `<frozen importlib._bootstrap>`.
    error = raised_through({"__name__": "runtime.loop"}, partial(exec, "1 / 0", {}))
    assert '"<string>"' in user_stack_trace(error.__traceback__)[-1]


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


# --- an error report larger than Lambda accepts -------------------------------------


def test_an_error_report_that_fits_is_sent_as_it_is() -> None:
    error = ErrorPayload("boom", "ValueError", "req-1", ['  File "a.py", line 1, in f\n'])
    assert fit_error_report(error) is error


def test_a_7_mb_message_is_cut_to_lambda_s_6_mib_keeping_type_and_request_id() -> None:
    frames = [f'  File "app.py", line {n}, in f\n' for n in range(3)]
    error = ErrorPayload("x" * 7_000_000, "ValueError", "req-1", frames)
    fitted = fit_error_report(error)
    assert len(fitted.to_json()) <= MAX_ERROR_REPORT == 6 * 1024 * 1024
    assert len(fitted.to_json()) > MAX_ERROR_REPORT - 100  # cut, not emptied
    assert (fitted.error_type, fitted.request_id) == ("ValueError", "req-1")
    assert fitted.error_message == "x" * (len(fitted.error_message) - len(CUT_MARK)) + CUT_MARK
    assert fitted.stack_trace == ["  ... 3 frames cut to fit Lambda's limit\n"]


def test_a_long_trace_loses_its_outermost_frames_first() -> None:
    frames = [f'  File "app.py", line {n}, in f\n    f()\n' for n in range(400_000)]
    error = ErrorPayload("maximum recursion depth exceeded", "RecursionError", "req-1", frames)
    fitted = fit_error_report(error)
    assert len(fitted.to_json()) <= MAX_ERROR_REPORT
    assert fitted.error_message == error.error_message  # the message whole
    mark, *kept = fitted.stack_trace
    assert kept == frames[len(frames) - len(kept) :]  # the innermost, in order
    assert mark == f"  ... {len(frames) - len(kept)} frames cut to fit Lambda's limit\n"
    assert len(kept) > 100_000


def test_characters_json_escapes_are_counted_as_sent() -> None:
    # Each of these takes 6 bytes in the JSON Lambda receives (\u00e9, \u2028).
    error = ErrorPayload("é\u2028" * 1_000_000, "ValueError", "req-1")
    fitted = fit_error_report(error, limit=1_000_000)
    assert len(fitted.to_json()) <= 1_000_000
    assert len(fitted.to_json()) > 1_000_000 - 100
    assert json.loads(fitted.to_json())["errorMessage"].endswith(CUT_MARK)


def test_a_7_mb_error_report_is_cut_before_it_is_posted(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, Calls(raises=ValueError("x" * 7_000_000)), 1)
    posted = api.requests[1]
    assert posted.path == error_path("req-1")
    assert len(posted.body) <= MAX_ERROR_REPORT
    assert posted.json()["errorMessage"].endswith("xxx" + CUT_MARK)
    assert posted.headers[headers.FUNCTION_ERROR_TYPE] == "ValueError"
