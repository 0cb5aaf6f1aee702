"""The invoke loop and the Runtime API client against the fake Runtime API:
the exact requests made for each outcome, and what ends the loop."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from functools import partial
from typing import Any

import pytest
from fake_runtime_api import (
    FUNCTION_ARN,
    NEXT,
    FakeRuntimeAPI,
    error_path,
    response_path,
)
from samples import CLIENT_CONTEXT
from support import Calls, WriteModule, answering, echo
from support import run_loop as run_loop_with

from runtime.logs import LambdaTextFormatter, RequestIdFilter

ENV = {
    "_HANDLER": "app.handler",
    "AWS_LAMBDA_FUNCTION_NAME": "fake",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fake",
    "AWS_LAMBDA_LOG_STREAM_NAME": "stream-1",
}
# The loop with a function's settings, writing the trace id where Lambda's runtime does.
run_loop = partial(run_loop_with, env=ENV, environ=os.environ)


# --- responses ----------------------------------------------------------------


def test_json_result_is_posted_to_the_response_path(api: FakeRuntimeAPI) -> None:
    api.add_event(b'{"text":"Hello"}', "req-1")
    run_loop(api, echo, 1)
    assert api.paths() == [
        ("GET", "/2018-06-01/runtime/invocation/next"),
        ("POST", "/2018-06-01/runtime/invocation/req-1/response"),
    ]
    posted = api.requests[1]
    assert posted.body == b'{"text": "Hello"}'
    assert posted.headers["Content-Type"] == "application/json"
    assert posted.headers["Lambda-Runtime-Function-Error-Type"] is None


def test_bytes_result_is_posted_as_is(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, Calls(answer=b"\x89PNG\r\n\x00"), 1)
    posted = api.requests[1]
    assert (posted.path, posted.body) == (response_path("req-1"), b"\x89PNG\r\n\x00")
    assert posted.headers["Content-Type"] == "application/unknown"


def test_loop_serves_events_in_order_and_stops_after_n(api: FakeRuntimeAPI) -> None:
    for i in range(3):
        api.add_event(json.dumps({"i": i}), f"req-{i}")
    run_loop(api, echo, 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", response_path("req-0")),
        ("GET", NEXT),
        ("POST", response_path("req-1")),
    ]
    assert [r.body for r in api.requests if r.method == "POST"] == [b'{"i": 0}', b'{"i": 1}']


def test_non_json_event_reaches_the_handler_as_bytes(api: FakeRuntimeAPI) -> None:
    calls = Calls(answer="ok")
    api.add_event(b"\x00raw", "req-1", {"Content-Type": "application/octet-stream"})
    run_loop(api, calls, 1)
    assert calls.events == [b"\x00raw"]


# --- invocation errors: reported, and the loop goes on ------------------------


def test_handler_exception_is_posted_and_the_loop_goes_on(
    api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    path = write_module(
        "lambda_app",
        """\
        class OrderRejected(Exception):
            pass


        def handler(event, context):
            check(event)
            return "checked"


        def check(event):
            if not event:
                raise OrderRejected("order 42 has no items")
        """,
    )
    import lambda_app

    api.add_event(b"{}", "req-1")
    api.add_event(b'{"items": 1}', "req-2")
    run_loop(api, lambda_app.handler, 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", "/2018-06-01/runtime/invocation/req-1/error"),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    error = api.requests[1]
    assert error.headers["Lambda-Runtime-Function-Error-Type"] == "OrderRejected"
    assert error.headers["Content-Type"] == "application/json"
    assert error.json() == {
        "errorMessage": "order 42 has no items",
        "errorType": "OrderRejected",
        "requestId": "req-1",
        "stackTrace": [
            f'  File "{path}", line 6, in handler\n    check(event)\n',
            f'  File "{path}", line 12, in check\n'
            '    raise OrderRejected("order 42 has no items")\n',
        ],
    }
    assert api.requests[3].body == b'"checked"'


def test_error_loop_continues_in_one_run(api: FakeRuntimeAPI) -> None:
    handler = answering(ValueError(""), "fine")
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, handler, 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", error_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    # An empty message is allowed.
    assert api.requests[1].json()["errorMessage"] == ""
    assert api.requests[1].json()["errorType"] == "ValueError"
    assert api.requests[3].body == b'"fine"'


def test_invalid_json_event_is_an_unmarshal_error(api: FakeRuntimeAPI) -> None:
    calls = Calls()
    api.add_event(b"{not json", "req-1")
    run_loop(api, calls, 1)
    assert calls.events == []
    error = api.requests[1]
    assert error.path == error_path("req-1")
    assert error.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.UnmarshalError"
    assert error.json() == {
        "errorMessage": "Unable to unmarshal input: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)",
        "errorType": "Runtime.UnmarshalError",
        "requestId": "req-1",
        "stackTrace": [],
    }


def test_result_that_is_not_json_is_a_marshal_error(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, Calls(answer={"tags": {"a", "b"}}), 1)
    error = api.requests[1]
    assert error.path == error_path("req-1")
    assert error.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.MarshalError"
    assert error.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": "req-1",
        "stackTrace": [],
    }


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (
            "Lambda-Runtime-Client-Context",
            "{bad",
            "Unable to parse Client Context JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
        (
            "Lambda-Runtime-Cognito-Identity",
            "not json",
            "Unable to parse Cognito Identity JSON: Expecting value: line 1 column 1 (char 0)",
        ),
    ],
)
def test_malformed_context_header_is_reported_and_the_handler_not_run(
    api: FakeRuntimeAPI, header: str, value: str, message: str
) -> None:
    calls = Calls(answer="ran")
    api.add_event(b"{}", "req-1", {header: value})
    api.add_event(b"{}", "req-2")
    run_loop(api, calls, 2)
    assert len(calls.events) == 1  # only req-2's
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", error_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    error = api.requests[1]
    assert (
        error.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.LambdaContextUnmarshalError"
    )
    assert error.json() == {
        "errorMessage": message,
        "errorType": "Runtime.LambdaContextUnmarshalError",
        "requestId": "req-1",
        "stackTrace": [],
    }


def test_sys_exit_in_the_handler_is_reported_then_ends_the_process(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    with pytest.raises(SystemExit):
        run_loop(api, Calls(raises=SystemExit(3)), 1)
    assert api.paths() == [("GET", NEXT), ("POST", error_path("req-1"))]
    assert api.requests[1].json()["errorType"] == "SystemExit"
    assert api.requests[1].json()["errorMessage"] == "3"


# --- 413: the invoke is lost, the runtime is not -------------------------------


def test_response_refused_as_too_large_is_logged_and_the_loop_goes_on(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b'{"small": 1}', "req-2")
    api.fail(response_path("req-1"), 413, b'{"errorType":"RequestEntityTooLarge"}')
    big = "x" * 6_291_557
    answers = iter([big, "small"])
    run_loop(api, lambda event, context: next(answers), 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", response_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    assert len(api.requests[1].body) == 6_291_559
    assert api.requests[3].body == b'"small"'
    assert capsys.readouterr().err == (
        "staticlambda: response for req-1 refused, 6291559 bytes: POST "
        '/runtime/invocation/req-1/response: 413 {"errorType":"RequestEntityTooLarge"}\n'
    )


def test_error_report_refused_as_too_large_is_logged_and_the_loop_goes_on(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(error_path("req-1"), 413, b"too large")
    handler = answering(ValueError("y" * 7_000_000), "ok")
    run_loop(api, handler, 2)
    assert api.paths()[2:] == [("GET", NEXT), ("POST", response_path("req-2"))]
    err = capsys.readouterr().err
    assert err == (
        "staticlambda: error report for req-1 refused: POST /runtime/invocation/req-1/error: "
        "413 too large\n"
    )


# --- what the handler sees -------------------------------------------------------


def test_context_from_next_headers_and_environment(api: FakeRuntimeAPI) -> None:
    calls = Calls()
    api.add_event(
        b"{}",
        "req-ctx",
        {
            "Lambda-Runtime-Client-Context": json.dumps(CLIENT_CONTEXT),
            "Lambda-Runtime-Cognito-Identity": json.dumps(
                {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
            ),
            "Lambda-Runtime-Aws-Tenant-Id": "tenant-7",
        },
    )
    run_loop(api, calls, 1)
    context = calls.contexts[0]
    assert context.aws_request_id == "req-ctx"
    assert context.invoked_function_arn == FUNCTION_ARN
    assert context.function_name == "fake"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb == "128"
    assert context.log_group_name == "/aws/lambda/fake"
    assert context.log_stream_name == "stream-1"
    assert context.tenant_id == "tenant-7"
    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == (
        "id-1",
        "pool-1",
    )
    assert context.client_context.custom == {"cart": "42"}
    assert context.client_context.env == CLIENT_CONTEXT["env"]
    client = context.client_context.client
    assert [
        client.installation_id,
        client.app_title,
        client.app_version_name,
        client.app_version_code,
        client.app_package_name,
    ] == ["inst-1", "Shop", "2.1", "21", "com.example.shop"]
    assert 0 < context.get_remaining_time_in_millis() <= 60_000


def test_context_with_bad_or_past_deadline_has_no_time_left(api: FakeRuntimeAPI) -> None:
    calls = Calls()
    api.add_event(b"{}", "req-1", {"Lambda-Runtime-Deadline-Ms": "soon"})
    api.add_event(b"{}", "req-2", {"Lambda-Runtime-Deadline-Ms": "1000"})
    run_loop(api, calls, 2)
    assert [c.get_remaining_time_in_millis() for c in calls.contexts] == [0, 0]


def test_trace_id_is_set_per_invoke_and_removed_when_absent(api: FakeRuntimeAPI) -> None:
    os.environ["_X_AMZN_TRACE_ID"] = "Root=stale-from-before"
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    calls = Calls()
    api.add_event(b"{}", "req-1", {"Lambda-Runtime-Trace-Id": trace})
    api.add_event(b"{}", "req-2")
    api.add_event(b"{}", "req-3", {"Lambda-Runtime-Trace-Id": "Root=3"})
    run_loop(api, calls, 3)
    assert calls.trace_ids == [trace, None, "Root=3"]


def test_logging_records_carry_the_request_id(api: FakeRuntimeAPI) -> None:
    request_id_filter = RequestIdFilter()
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    log_handler.setFormatter(LambdaTextFormatter())
    log_handler.addFilter(request_id_filter)
    logger = logging.getLogger("lambda_test_app")
    logger.addHandler(log_handler)

    def handler(event: Any, context: Any) -> Any:
        logger.warning("processing %s", event["order"])
        logger.warning("two\nlines")

    try:
        api.add_event(b'{"order": 1}', "req-a")
        api.add_event(b'{"order": 2}', "req-b")
        run_loop(api, handler, 2, request_id_filter)
    finally:
        logger.removeHandler(log_handler)
    lines = stream.getvalue().split("\n")
    assert len(lines) == 5 and lines[-1] == ""
    fields = [line.split("\t") for line in lines[:-1]]
    assert [(f[0], f[2], f[3]) for f in fields] == [
        ("[WARNING]", "req-a", "processing 1"),
        ("[WARNING]", "req-a", "two\rlines"),
        ("[WARNING]", "req-b", "processing 2"),
        ("[WARNING]", "req-b", "two\rlines"),
    ]
    assert all(len(f[1]) == len("2026-11-26T21:40:03.511Z") and f[1].endswith("Z") for f in fields)


def test_client_context_header_is_plain_json_not_base64(api: FakeRuntimeAPI) -> None:
    # Lambda decodes the invoker's base64 before /next; the runtime gets JSON.
    calls = Calls()
    encoded = base64.b64encode(b'{"custom": {"a": 1}}').decode()
    api.add_event(b"{}", "req-1", {"Lambda-Runtime-Client-Context": encoded})
    run_loop(api, calls, 1)
    assert calls.events == []
    assert api.requests[1].json()["errorType"] == "Runtime.LambdaContextUnmarshalError"
