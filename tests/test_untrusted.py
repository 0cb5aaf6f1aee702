"""What the runtime takes as data, never as code or control: exceptions a
handler raises (however broken), and the values a broken or hostile Runtime
API sends. Each is reported as Lambda expects, and the loop keeps serving.
The loop runs in-process against the fake Runtime API."""

from __future__ import annotations

import base64
import json
import linecache
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import NEXT, PREFIX, FakeRuntimeAPI, error_path, response_path
from support import WriteModule, answering, run_loop

from runtime import errors, headers, loop
from runtime.client import MAX_DEADLINE_MS, RuntimeAPIClient
from runtime.deadline import SoftDeadline
from runtime.errors import ErrorPayload, RuntimeAPIError, header_error_type, safe_str

ERROR_TYPE = headers.FUNCTION_ERROR_TYPE
DEEP = 100_000  # nesting levels, far past the interpreter's recursion limit


def served(event: Any, context: Any) -> str:
    return "served"


# --- exceptions no error report can be built from naively -----------------------

HOSTILE = """\
class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


class NotText(Exception):
    def __str__(self):
        return 42


class Ошибка(Exception):
    pass


Injected = type("Bad\\r\\nX-Injected: 1", (Exception,), {})


def handler(event, context):
    kind = event.get("raise")
    if kind == "unprintable":
        raise Unprintable()
    if kind == "not text":
        raise NotText()
    if kind == "cyrillic":
        raise Ошибка("заказ не принят")
    if kind == "crlf":
        raise Injected("split the header")
    return "served"
"""


@pytest.mark.parametrize(
    ("kind", "error_type", "header", "message"),
    [
        ("unprintable", "Unprintable", "Unprintable", "<exception str() failed>"),
        ("not text", "NotText", "NotText", "<exception str() failed>"),
        ("cyrillic", "Ошибка", errors.UNNAMEABLE_ERROR_TYPE, "заказ не принят"),
        ("crlf", "Bad\r\nX-Injected: 1", errors.UNNAMEABLE_ERROR_TYPE, "split the header"),
    ],
    ids=["unprintable", "str-not-text", "cyrillic-name", "crlf-name"],
)
def test_an_exception_that_breaks_naive_reporting_is_reported_and_the_loop_goes_on(
    api: FakeRuntimeAPI,
    write_module: WriteModule,
    kind: str,
    error_type: str,
    header: str,
    message: str,
) -> None:
    write_module("hostile_app", HOSTILE)
    import hostile_app

    api.add_event(json.dumps({"raise": kind}), "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, hostile_app.handler, 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", error_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    report = api.requests[1]
    assert report.headers[ERROR_TYPE] == header
    assert report.headers.get("X-Injected") is None
    error = report.json()
    assert (error["errorType"], error["errorMessage"], error["requestId"]) == (
        error_type,
        message,
        "req-1",
    )
    assert "in handler" in error["stackTrace"][-1]
    cause = json.loads(report.headers[headers.FUNCTION_XRAY_ERROR_CAUSE])
    assert cause["exceptions"][0]["message"] == message
    assert api.requests[3].body == b'"served"'


def test_a_stream_failing_with_an_unnameable_exception_sends_a_header_safe_trailer(
    api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    write_module("hostile_app", HOSTILE)
    import hostile_app

    def handler(event: Any, context: Any) -> Iterator[bytes]:
        yield b"partial"
        hostile_app.handler({"raise": event["raise"]}, context)

    api.add_event(b'{"raise": "cyrillic"}', "req-1")
    api.add_event(b'{"raise": "crlf"}', "req-2")
    run_loop(api, handler, 2)
    for request, name in [(api.requests[1], "Ошибка"), (api.requests[3], "Bad\r\nX-Injected: 1")]:
        assert request.chunks == (b"partial",)
        assert request.trailers is not None
        assert request.trailers[ERROR_TYPE] == errors.UNNAMEABLE_ERROR_TYPE
        body = json.loads(base64.b64decode(request.trailers[headers.FUNCTION_ERROR_BODY]))
        assert body["errorType"] == name


def test_a_handler_that_removed_its_working_directory_is_still_reported(
    api: FakeRuntimeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # restored after the test

    def handler(event: Any, context: Any) -> str:
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        os.chdir(scratch)
        scratch.rmdir()
        raise ValueError("lost my way")

    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, lambda e, c: handler(e, c) if c.aws_request_id == "req-1" else "served", 2)
    assert [p for _, p in api.paths()] == [NEXT, error_path("req-1"), NEXT, response_path("req-2")]
    assert api.requests[1].json()["errorMessage"] == "lost my way"
    assert (
        json.loads(api.requests[1].headers[headers.FUNCTION_XRAY_ERROR_CAUSE])["working_directory"]
        == ""
    )


def test_a_module_whose_loader_cannot_give_its_source_is_still_reported(
    api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    # Its file gone (as in a frozen binary), the traceback's source lines are
    # asked of the module's loader, which may raise anything.
    path = write_module(
        "sourceless_app",
        """\
        class Loader:
            def get_source(self, name):
                raise RuntimeError("source withheld")


        __loader__ = Loader()


        def handler(event, context):
            if event:
                raise ValueError("from a module without source")
            return "served"
        """,
    )
    import sourceless_app

    path.unlink()
    linecache.clearcache()
    api.add_event(b'{"raise": 1}', "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, sourceless_app.handler, 2)
    error = api.requests[1].json()
    assert (error["errorType"], error["errorMessage"]) == (
        "ValueError",
        "from a module without source",
    )
    assert error["stackTrace"] == [f'  File "{path}", line 11, in handler\n']
    assert api.requests[3].body == b'"served"'


def test_when_the_full_report_fails_a_minimal_one_is_posted_and_the_loop_goes_on(
    api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A fault injected where no exception should ever get to: a bug of ours
    # on the error path must still leave the invoke answered.
    def broken_cause(exc: BaseException, working_directory: str) -> str | None:
        raise MemoryError("injected")

    monkeypatch.setattr(loop, "xray_error_cause", broken_cause)
    handler = answering(ValueError("first"), "second")
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, handler, 2)
    assert [p for _, p in api.paths()] == [NEXT, error_path("req-1"), NEXT, response_path("req-2")]
    report = api.requests[1]
    assert report.headers[ERROR_TYPE] == errors.REPORT_FAILED
    assert report.json() == {
        "errorMessage": "the runtime could not report this ValueError",
        "errorType": errors.REPORT_FAILED,
        "requestId": "req-1",
        "stackTrace": [],
    }
    assert api.requests[3].body == b'"second"'


def test_safe_str_and_header_error_type() -> None:
    class Raises(Exception):
        def __str__(self) -> str:
            raise KeyboardInterrupt  # not even an Exception

    assert safe_str(ValueError("fine")) == "fine"
    with pytest.raises(KeyboardInterrupt):
        safe_str(Raises())  # Ctrl-C is not swallowed by the error path
    assert header_error_type("Runtime.ImportModuleError") == "Runtime.ImportModuleError"
    for unfit in ("Ошибка", "a\r\nb", "a\tb", "", " lead", "trail ", "nul\x00"):
        assert header_error_type(unfit) == errors.UNNAMEABLE_ERROR_TYPE, unfit
    payload = ErrorPayload.report_failed(type("Ошибка", (Exception,), {})(), "r")
    assert (
        payload.error_message == f"the runtime could not report this {errors.UNNAMEABLE_ERROR_TYPE}"
    )


# --- a broken or hostile Runtime API ----------------------------------------------


def test_a_request_id_is_one_path_segment_never_another_endpoint(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "../../init")
    api.add_event(b'{"raise": 1}', "../x")
    api.add_event(b"{}", "..")

    def handler(event: Any, context: Any) -> str:
        if event:
            raise ValueError("reported to its own path")
        return "served"

    run_loop(api, handler, 3)
    invocation = f"{PREFIX}/invocation"
    assert [p for m, p in api.paths() if m == "POST"] == [
        f"{invocation}/%2E%2E%2F%2E%2E%2Finit/response",
        f"{invocation}/%2E%2E%2Fx/error",
        f"{invocation}/%2E%2E/response",
    ]


def test_a_streamed_response_s_request_id_is_escaped_too(api: FakeRuntimeAPI) -> None:
    def handler(event: Any, context: Any) -> Iterator[bytes]:
        yield b"a"

    api.add_event(b"{}", "../../init")
    run_loop(api, handler, 1)
    [post] = [r for r in api.requests if r.method == "POST"]
    assert (post.path, post.body) == (f"{PREFIX}/invocation/%2E%2E%2F%2E%2E%2Finit/response", b"a")


def test_a_request_id_that_is_not_printable_ascii_ends_the_loop(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req 1")
    with pytest.raises(RuntimeAPIError, match="Lambda-Runtime-Aws-Request-Id of 'req 1'"):
        run_loop(api, served, 1)
    assert api.paths() == [("GET", NEXT)]


@pytest.mark.parametrize(
    ("header", "deadline_ms"),
    [
        ("9999999999999999999", MAX_DEADLINE_MS),
        ("99999999999999999999999999999", 0),  # not a number Lambda would send at all
        ("-5", 0),
        ("1e3", 0),
        ("1_000", 0),  # a number to int(), not to HTTP
        ("1700000000000", 1_700_000_000_000),
    ],
)
def test_deadline_header_is_read_as_data(
    api: FakeRuntimeAPI, header: str, deadline_ms: int
) -> None:
    api.add_event(b"{}", "req-1", {headers.DEADLINE_MS: header})
    client = RuntimeAPIClient(f"http://{api.address}/2018-06-01")
    try:
        assert client.next_invocation().deadline_ms == deadline_ms
    finally:
        client.close()


class Records(logging.Handler):
    """Soft-deadline records, and a lock held until the first one comes."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.unlogged = threading.Lock()
        self.unlogged.acquire()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.unlogged.locked():
            self.unlogged.release()


@pytest.fixture
def records(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger(f"test_untrusted.{request.node.name}")
    keep = Records()
    logger.addHandler(keep)
    logger.propagate = False
    yield logger, keep
    logger.removeHandler(keep)


def test_a_huge_deadline_does_not_kill_the_soft_deadline_watcher(
    api: FakeRuntimeAPI, records: tuple[logging.Logger, Records]
) -> None:
    logger, kept = records

    def handler(event: Any, context: Any) -> str:
        if context.aws_request_id == "req-huge":
            time.sleep(0.05)  # the watcher now waits towards that deadline
        else:
            assert kept.unlogged.acquire(timeout=10), "the watcher is gone"
        return "served"

    api.add_event(b"{}", "req-huge", {headers.DEADLINE_MS: "9999999999999999999"})
    api.add_event(b"{}", "req-slow", deadline_in_ms=400)
    run_loop(api, handler, 2, soft_deadline=SoftDeadline(200, logger))
    assert [m.split(" has ")[0] for m in kept.messages] == ["Soft deadline: request req-slow"]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_deadline_past_any_timer_armed_directly_does_not_kill_the_watcher(
    records: tuple[logging.Logger, Records],
) -> None:
    # Not through the client (which clamps): the watcher holds on its own.
    logger, kept = records
    soft = SoftDeadline(200, logger)
    soft.arm("req-huge", 10**30)
    time.sleep(0.05)  # the watcher now waits towards it
    soft.arm("req-soon", now_ms() + 300)  # fires 100 ms from now
    assert kept.unlogged.acquire(timeout=10), "the watcher is gone"
    soft.disarm()
    assert [m.split(" has ")[0] for m in kept.messages] == ["Soft deadline: request req-soon"]


def test_an_event_nested_too_deep_is_an_unmarshal_error(api: FakeRuntimeAPI) -> None:
    api.add_event("[" * DEEP + "]" * DEEP, "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, served, 2)
    report = api.requests[1]
    assert report.path == error_path("req-1")
    assert report.headers[ERROR_TYPE] == "Runtime.UnmarshalError"
    assert report.json()["errorMessage"].startswith("Unable to unmarshal input: maximum recursion")
    assert api.requests[3].body == b'"served"'


@pytest.mark.parametrize("header", [headers.CLIENT_CONTEXT, headers.COGNITO_IDENTITY])
def test_a_context_header_nested_too_deep_is_a_context_unmarshal_error(
    api: FakeRuntimeAPI, header: str
) -> None:
    depth = 10_000  # past the recursion limit, within an HTTP header's size
    api.add_event(b"{}", "req-1", {header: "[" * depth + "]" * depth})
    api.add_event(b"{}", "req-2")
    run_loop(api, served, 2)
    report = api.requests[1]
    assert report.path == error_path("req-1")
    assert report.headers[ERROR_TYPE] == "Runtime.LambdaContextUnmarshalError"
    assert api.requests[3].body == b'"served"'
