"""`python -m runtime` as a process, against the fake Runtime API: exit codes,
what reaches stdout and stderr, and the init error report."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fake_runtime_api import (
    INIT_ERROR,
    NEXT,
    NO_MORE_EVENTS,
    FakeRuntimeAPI,
    error_path,
    response_path,
)
from support import ROOT, WriteModule, run_runtime

API_FAILED = "staticlambda: the Runtime API failed, exiting: "
# /next tried 5 times over 1.5 s (runtime/client.py), then given up.
GAVE_UP = r" \(gave up after 5 attempts in 1\.\d s\)\n"


def test_without_runtime_api_exits_2_saying_what_is_missing(tmp_path: Path) -> None:
    done = run_runtime(tmp_path, "handlers.echo.handler")
    assert done.returncode == 2
    assert done.stderr.startswith("staticlambda: AWS_LAMBDA_RUNTIME_API is not set")
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n")
    assert done.stdout == ""


def test_with_empty_runtime_api_exits_2(tmp_path: Path) -> None:
    done = run_runtime(tmp_path, "handlers.echo.handler", env={"AWS_LAMBDA_RUNTIME_API": " "})
    assert (done.returncode, done.stderr.split(":")[1]) == (2, " AWS_LAMBDA_RUNTIME_API is not set")


def test_without_handler_exits_2(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    done = run_runtime(tmp_path, api=api)
    assert done.returncode == 2
    assert done.stderr.startswith("staticlambda: no handler: ")
    assert api.requests == []


def test_more_than_one_argument_exits_2(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    done = run_runtime(tmp_path, "a.b", "c.d", api=api)
    assert done.returncode == 2
    assert done.stderr.startswith("staticlambda: expected at most one argument, got 2\n")


# --- init errors --------------------------------------------------------------


def test_init_error_is_posted_and_the_process_exits_1(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-never-served")
    done = run_runtime(tmp_path, "lambda_missing.handler", api=api)
    assert done.returncode == 1
    assert api.paths() == [("POST", "/2018-06-01/runtime/init/error")]
    posted = api.requests[0]
    assert posted.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.ImportModuleError"
    assert posted.headers["Content-Type"] == "application/json"
    assert posted.json() == {
        "errorMessage": (
            "Unable to import module 'lambda_missing': No module named 'lambda_missing'"
        ),
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert done.stdout == (
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'lambda_missing': "
        "No module named 'lambda_missing'\rTraceback (most recent call last):\n"
    )
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("handler", "source", "error_type", "message"),
    [
        (
            "nodot",
            None,
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "lambda_app.handler",
            "import lambda_dependency_not_installed\n",
            "Runtime.ImportModuleError",
            "Unable to import module 'lambda_app': "
            "No module named 'lambda_dependency_not_installed'",
        ),
        (
            "lambda_app.handler",
            "def handler(:\n",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'lambda_app': invalid syntax (lambda_app.py, line 1)",
        ),
        (
            "lambda_app.handle",
            "def handler(e, c):\n    pass\n",
            "Runtime.HandlerNotFound",
            "Handler 'handle' missing on module 'lambda_app'",
        ),
        (
            "lambda_app.handler",
            "def handler(e, c):\n    pass\nconfig = {}['TABLE']\n",
            "KeyError",
            "'TABLE'",
        ),
    ],
)
def test_every_init_row_is_posted_with_its_type(
    tmp_path: Path,
    api: FakeRuntimeAPI,
    write_module: WriteModule,
    handler: str,
    source: str | None,
    error_type: str,
    message: str,
) -> None:
    if source is not None:
        write_module("lambda_app", source)
    done = run_runtime(tmp_path, handler, api=api)
    assert done.returncode == 1
    assert api.paths() == [("POST", INIT_ERROR)]
    assert api.requests[0].headers["Lambda-Runtime-Function-Error-Type"] == error_type
    body = api.requests[0].json()
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == (error_type, message, "")
    assert done.stdout.startswith(f"[ERROR] {error_type}: {message}\rTraceback")


def test_exception_at_import_has_no_runtime_frames(
    tmp_path: Path, api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    path = write_module("lambda_app", "import json\n\nratio = 1 / len([])\n")
    done = run_runtime(tmp_path, "lambda_app.handler", api=api)
    assert done.returncode == 1
    body = api.requests[0].json()
    assert (body["errorType"], body["errorMessage"]) == ("ZeroDivisionError", "division by zero")
    trace = body["stackTrace"]
    assert not [frame for frame in trace if str(ROOT / "runtime") in frame]
    # From the import machinery down to the user's line, as on AWS's runtime.
    assert re.match(r'  File ".*/importlib/__init__\.py", line \d+, in import_module\n', trace[0])
    assert trace[-1] == f'  File "{path}", line 3, in <module>\n    ratio = 1 / len([])\n'


def test_init_error_that_cannot_be_posted_exits_1_in_one_line(
    tmp_path: Path, api: FakeRuntimeAPI
) -> None:
    api.close()
    done = run_runtime(tmp_path, "lambda_missing.handler", api=api)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{API_FAILED}POST /runtime/init/error: ConnectError: ")
    assert done.stderr.count("\n") == 1


# --- the loop in the process, and the Runtime API failing ----------------------


def test_events_are_served_until_the_api_fails(
    tmp_path: Path, api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    write_module(
        "lambda_app",
        """\
        def handler(event, context):
            if event.get("fail"):
                raise ValueError("asked to fail")
            return {"got": event, "id": context.aws_request_id}
        """,
    )
    api.add_event(b'{"fail": true}', "req-1")
    api.add_event(b'{"n": 2}', "req-2")
    done = run_runtime(tmp_path, env={"_HANDLER": "lambda_app.handler"}, api=api)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", error_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
        *[("GET", NEXT)] * 5,
    ]
    assert api.requests[1].json()["stackTrace"] == [
        f'  File "{tmp_path / "lambda_app.py"}", line 3, in handler\n'
        '    raise ValueError("asked to fail")\n'
    ]
    assert api.requests[3].body == b'{"got": {"n": 2}, "id": "req-2"}'
    # Out of events, the fake answers /next with 500, again and again: the
    # runtime tries 5 times, then ends there.
    assert done.returncode == 1
    assert NO_MORE_EVENTS.startswith(b'{"errorMessage":"fake Runtime API: no more events"')
    assert re.fullmatch(
        f"{API_FAILED}GET /runtime/invocation/next: 500 Fake.NoMoreEvents: "
        f"fake Runtime API: no more events{GAVE_UP}",
        done.stderr,
    )


def test_500_from_next_exits_1_with_one_line(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    api.fail(NEXT, 500, b"Internal Server Error")
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api)
    assert done.returncode == 1
    assert re.fullmatch(
        f"{API_FAILED}GET /runtime/invocation/next: 500 Internal Server Error{GAVE_UP}",
        done.stderr,
    )
    assert done.stdout == ""


def test_next_answered_5xx_then_served_goes_on(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    api.fail(NEXT, 502, times=2)
    api.add_event(b'{"n": 1}', "req-1")
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api)
    assert [p for m, p in api.paths() if m == "POST"] == [response_path("req-1")]
    assert api.requests[3].body == b'{"n": 1}'
    assert re.fullmatch(f"{API_FAILED}GET /runtime/invocation/next: 500 .*{GAVE_UP}", done.stderr)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("fail", "500 Fake.Error: fake 500"), ("time_out", "410 InvokeTimeout: Invoke timeout")],
)
def test_a_refused_response_costs_that_invoke_and_the_next_is_served(
    tmp_path: Path, api: FakeRuntimeAPI, answer: str, reason: str
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b'{"n": 2}', "req-2")
    if answer == "fail":
        api.fail(response_path("req-1"), 500)
    else:
        api.time_out("req-1")
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api)
    assert [p for m, p in api.paths() if m == "POST"] == [
        response_path("req-1"),
        response_path("req-2"),
    ]
    refused, gave_up = done.stderr.splitlines(keepends=True)
    assert refused == (
        "staticlambda: response for req-1 refused, 2 bytes: "
        f"POST /runtime/invocation/req-1/response: {reason}\n"
    )
    assert re.fullmatch(f"{API_FAILED}GET /runtime/invocation/next: 500 .*{GAVE_UP}", gave_up)
    assert "Traceback" not in done.stderr


def test_refused_connection_exits_1_with_one_line(tmp_path: Path, api: FakeRuntimeAPI) -> None:
    api.close()
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api)
    assert done.returncode == 1
    line = done.stderr
    assert line.startswith(f"{API_FAILED}GET /runtime/invocation/next: ConnectError: ")
    assert "Connection refused" in line
    assert re.search(GAVE_UP, line)
    assert line.count("\n") == 1 and "Traceback" not in line


def test_a_post_never_answered_ends_the_runtime_with_one_line_in_ten_seconds(
    tmp_path: Path, api: FakeRuntimeAPI
) -> None:
    api.add_event(b"{}", "req-1")
    api.hang(response_path("req-1"))
    started = time.monotonic()
    done = run_runtime(tmp_path, "handlers.echo.handler", api=api)
    took = time.monotonic() - started
    assert done.returncode == 1
    assert 10 <= took < 25, took  # POST_TIMEOUT_S, and the process's start and end
    assert api.requests[-1].path == response_path("req-1")  # it ended there
    assert done.stderr == (
        f"{API_FAILED}POST /runtime/invocation/req-1/response: no answer in 10 s (ReadTimeout)\n"
    )


# --- output ---------------------------------------------------------------------


def test_logging_lines_carry_the_request_id(
    tmp_path: Path, api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    write_module(
        "lambda_app",
        """\
        import logging

        def handler(event, context):
            logging.getLogger().warning("order %s", event["order"])
            logging.getLogger().info("not shown at the default level")
        """,
    )
    api.add_event(b'{"order": 1}', "req-a")
    api.add_event(b'{"order": 2}', "req-b")
    done = run_runtime(tmp_path, "lambda_app.handler", api=api)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(
        rf"\[WARNING\]\t{stamp}\treq-a\torder 1\n\[WARNING\]\t{stamp}\treq-b\torder 2\n",
        done.stdout,
    ), done.stdout


def test_log_level_from_the_function_configuration_shows_only_the_function_s_lines(
    tmp_path: Path, api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    # Not the runtime's own HTTP requests (httpx and httpcore log at INFO and DEBUG).
    write_module(
        "lambda_app",
        "import logging\n\ndef handler(e, c):\n    logging.getLogger().debug('shown')\n",
    )
    api.add_event(b"{}", "req-a")
    done = run_runtime(
        tmp_path, "lambda_app.handler", api=api, env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    )
    assert re.fullmatch(r"\[DEBUG\]\t\S+\treq-a\tshown\n", done.stdout), done.stdout


def test_print_and_stderr_are_unbuffered(
    tmp_path: Path, api: FakeRuntimeAPI, write_module: WriteModule
) -> None:
    # os._exit skips every flush: only what was written through survives.
    write_module(
        "lambda_app",
        """\
        import os, sys

        def handler(event, context):
            print("printed before the kill")
            sys.stderr.write("to stderr before the kill\\n")
            os._exit(9)
        """,
    )
    api.add_event(b"{}", "req-1")
    done = run_runtime(tmp_path, "lambda_app.handler", api=api)
    assert done.returncode == 9
    assert done.stdout == "printed before the kill\n"
    assert done.stderr == "to stderr before the kill\n"
