"""runtime/client.py: one client for every request to Lambda, one reading of
the answers (check_status), whichever way the body goes: buffered, streamed,
or to the Extensions API; what a refused post costs (one invoke), how /next
is tried again, and how a Runtime API gone for good ends the loop (the
client's error, one line)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import tomllib
from fake_runtime_api import NEXT, FakeRuntimeAPI, error_path, response_path
from support import ROOT, Calls, answering, echo, run_loop

from runtime import client as client_module
from runtime.client import (
    NEXT_ATTEMPTS,
    USER_AGENT,
    ExtensionsAPIClient,
    RuntimeAPIClient,
    check_status,
)
from runtime.errors import (
    APIUnavailable,
    InvokeLost,
    NoAnswer,
    PayloadTooLarge,
    RuntimeAPIError,
)


def streams(event: Any, context: Any) -> Iterator[bytes]:
    yield b"chunk"


def test_check_status_is_the_one_reading_of_an_answer() -> None:
    check_status("POST /x", 202, "Accepted")
    with pytest.raises(PayloadTooLarge, match=r"^POST /x: 413 too big$"):
        check_status("POST /x", 413, "too big")
    with pytest.raises(APIUnavailable, match=r"^POST /x: 500 broken$"):
        check_status("POST /x", 500, "broken")
    with pytest.raises(RuntimeAPIError, match=r"^POST /x: 410 gone$") as e:
        check_status("POST /x", 410, "gone")
    assert not isinstance(e.value, (PayloadTooLarge, APIUnavailable))


def test_streamed_response_refused_as_too_large_is_logged_and_the_loop_goes_on(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(response_path("req-1"), 413)
    run_loop(api, streams, 2)
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", response_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    assert api.requests[3].chunks == (b"chunk",)
    assert (
        "staticlambda: streamed response for req-1 refused: POST "
        "/2018-06-01/runtime/invocation/req-1/response (streaming): 413 "
    ) in capsys.readouterr().err


def test_streamed_response_answered_500_costs_that_invoke_only(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(response_path("req-1"), 500)
    run_loop(api, streams, 2)
    assert posted_paths(api) == [response_path("req-1"), response_path("req-2")]
    assert capsys.readouterr().err == (
        "staticlambda: streamed response for req-1 refused: POST /2018-06-01/runtime/"
        "invocation/req-1/response (streaming): 500 Fake.Error: fake 500\n"
    )


def test_streamed_response_to_an_api_that_is_gone_is_an_invoke_lost() -> None:
    client = RuntimeAPIClient("http://127.0.0.1:1/2018-06-01")
    from runtime.streaming import ResponseStream

    with pytest.raises(InvokeLost, match=r"\(streaming\): ConnectionRefusedError: "):
        client.post_streamed_response("req-1", ResponseStream(iter([b"a"])))


# --- a refused post costs one invoke, never the runtime -------------------------------


def posted_paths(api: FakeRuntimeAPI) -> list[str]:
    return [path for method, path in api.paths() if method == "POST"]


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        ("time_out", "410 InvokeTimeout: Invoke timeout"),
        ("abort", "400 InvalidRequestID: Invalid request ID"),
    ],
)
@pytest.mark.parametrize("outcome", ["response", "error", "streamed response"])
def test_a_late_or_aborted_invoke_s_answer_is_logged_and_the_loop_goes_on(
    api: FakeRuntimeAPI,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    error_type: str,
    outcome: str,
) -> None:
    """Managed Instances refuses the answer of an invoke that timed out while
    its code ran on (410) or that it aborted (400): that invoke is lost, the
    next one is served."""
    api.add_event(b"{}", "req-late")
    api.add_event(b'{"n": 2}', "req-next")
    getattr(api, answer)("req-late")
    first = {
        "response": "ok",
        "error": ValueError("boom"),
        "streamed response": iter([b"a", b"b"]),
    }[outcome]
    run_loop(api, answering(first, "second"), 2)
    path = error_path("req-late") if outcome == "error" else response_path("req-late")
    assert posted_paths(api) == [path, response_path("req-next")]
    assert api.requests[-1].body == b'"second"'
    [line] = [line for line in capsys.readouterr().err.splitlines() if "req-late" in line]
    kind = "error report" if outcome == "error" else outcome
    assert line.startswith(f"staticlambda: {kind} for req-late refused")
    streaming = " (streaming)" if outcome == "streamed response" else ""
    assert line.endswith(f"{path.removeprefix('/2018-06-01')}{streaming}: {error_type}")


@pytest.mark.parametrize("status", [403, 404, 500, 502])
def test_any_other_refusal_of_an_answer_costs_that_invoke_only(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(response_path("req-1"), status, b"internal")
    run_loop(api, echo, 2)
    assert posted_paths(api) == [response_path("req-1"), response_path("req-2")]
    assert capsys.readouterr().err == (
        f"staticlambda: response for req-1 refused, 2 bytes: "
        f"POST /runtime/invocation/req-1/response: {status} internal\n"
    )


def test_an_error_report_refused_costs_that_invoke_only(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(error_path("req-1"), 500, b"")
    run_loop(api, answering(ValueError("x"), "ok"), 2)
    assert posted_paths(api) == [error_path("req-1"), response_path("req-2")]


def test_an_answer_the_api_never_receives_costs_that_invoke_then_next_finds_it_gone(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(event: Any, context: Any) -> Any:
        api.close()  # the API goes away while the handler runs
        return "done"

    api.add_event(b"{}", "req-1")
    with pytest.raises(APIUnavailable) as e:
        run_loop(api, handler, 2)
    assert re.fullmatch(
        r"staticlambda: response for req-1 refused, 6 bytes: "
        r"POST /runtime/invocation/req-1/response: ConnectError: .*\n",
        capsys.readouterr().err,
    )
    assert str(e.value).startswith("GET /runtime/invocation/next: ConnectError: ")
    assert str(e.value).endswith(f"(gave up after {NEXT_ATTEMPTS} attempts in 1.5 s)")


# --- /next: tried again while the API is unavailable, then given up ------------------


def next_times(api: FakeRuntimeAPI) -> list[float]:
    return [r.at for r in api.requests if r.path == NEXT]


def test_next_answered_5xx_is_tried_again_with_a_growing_delay(api: FakeRuntimeAPI) -> None:
    api.fail(NEXT, 503, times=3)
    api.add_event(b'{"n": 1}', "req-1")
    run_loop(api, echo, 1)
    assert api.paths() == [("GET", NEXT)] * 4 + [("POST", response_path("req-1"))]
    at = next_times(api)
    gaps = [later - earlier for earlier, later in zip(at, at[1:])]
    # 0.1 s, then doubling (lower bounds only: a loaded machine may be slower).
    assert all(gap >= least for gap, least in zip(gaps, (0.1, 0.2, 0.4))), gaps


def test_next_failing_for_good_gives_up_after_its_attempts_with_one_message(
    api: FakeRuntimeAPI,
) -> None:
    api.fail(NEXT, 500, b'{"errorMessage":"boom","errorType":"ServiceException"}')
    with pytest.raises(APIUnavailable) as e:
        run_loop(api, echo, 1)
    assert str(e.value) == (
        "GET /runtime/invocation/next: 500 ServiceException: boom "
        f"(gave up after {NEXT_ATTEMPTS} attempts in 1.5 s)"
    )
    assert len(next_times(api)) == NEXT_ATTEMPTS == 5


def test_refused_next_is_tried_again_then_given_up(api: FakeRuntimeAPI) -> None:
    api.close()
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, echo, 1)
    assert str(e.value).startswith("GET /runtime/invocation/next: ConnectError: ")
    assert "Connection refused" in str(e.value)
    assert str(e.value).endswith(f"(gave up after {NEXT_ATTEMPTS} attempts in 1.5 s)")
    assert "\n" not in str(e.value)


def test_a_4xx_from_next_is_not_tried_again(api: FakeRuntimeAPI) -> None:
    api.fail(NEXT, 403, b'{"errorMessage":"not now","errorType":"InvalidStateTransition"}')
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, echo, 1)
    assert not isinstance(e.value, APIUnavailable)
    assert str(e.value) == "GET /runtime/invocation/next: 403 InvalidStateTransition: not now"
    assert len(next_times(api)) == 1


# --- a post unanswered ends the runtime -----------------------------------------------


@pytest.mark.parametrize("outcome", ["response", "streamed response"])
def test_a_post_never_answered_ends_the_loop_after_the_post_timeout(
    api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    monkeypatch.setattr(client_module, "POST_TIMEOUT_S", 0.5)
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), 0.5)
    monkeypatch.setattr(client_module, "POST_TIMEOUT", {"timeout": timeouts})
    api.add_event(b"{}", "req-1")
    api.hang(response_path("req-1"))
    started = time.monotonic()
    with pytest.raises(NoAnswer) as e:
        run_loop(api, streams if outcome == "streamed response" else echo, 1)
    assert 0.5 <= time.monotonic() - started < 5
    streaming = " (streaming)" if outcome == "streamed response" else ""
    prefix = "/2018-06-01" if streaming else ""
    assert re.fullmatch(
        rf"POST {prefix}/runtime/invocation/req-1/response{re.escape(streaming)}: "
        r"no answer in 0.5 s \(\w+\)",
        str(e.value),
    )


def test_next_without_request_id_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    calls = Calls()
    api.add_event(b"{}", headers={"Lambda-Runtime-Aws-Request-Id": None})
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, calls, 1)
    assert str(e.value) == "/next answered without a Lambda-Runtime-Aws-Request-Id header"
    assert calls.events == []


def test_next_waits_for_ever_and_a_post_ten_seconds() -> None:
    # Lambda freezes the process between invokes: a /next may wait for hours.
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, headers={"Lambda-Runtime-Aws-Request-Id": "r"}, content=b"{}")

    client = RuntimeAPIClient(
        "http://127.0.0.1:9/2018-06-01", transport=httpx.MockTransport(answer)
    )
    client.next_invocation()
    client.post_response("r", b"{}", "application/json")
    no_timeout = {"connect": None, "read": None, "write": None, "pool": None}
    ten_seconds = {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert seen == [no_timeout, ten_seconds]


# --- the headers awslambdaric sends -----------------------------------------------------


def test_every_request_names_the_runtime_in_its_user_agent(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.add_event(b"{}", "req-3")
    run_loop(api, answering("ok", ValueError("x"), iter([b"streamed"])), 3)
    assert len(api.requests) == 6
    assert {r.headers["User-Agent"] for r in api.requests} == {USER_AGENT}
    # awslambdaric's form, "aws-lambda-python/3.11.2-4.2.2": one token, ours.
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(rf"staticlambda-python/3\.\d+\.\d+-{re.escape(version)}", USER_AGENT)


def test_an_invoke_s_answers_echo_its_invocation_id(api: FakeRuntimeAPI) -> None:
    for n in range(3):
        api.add_event(b"{}", f"req-{n}", {"Lambda-Runtime-Invocation-Id": f"inv-{n}"})
    api.add_event(b"{}", "req-none")
    run_loop(api, answering("ok", ValueError("x"), iter([b"streamed"]), "ok"), 4)
    answers = [r for r in api.requests if r.method == "POST"]
    assert [r.path for r in answers] == [
        response_path("req-0"),
        error_path("req-1"),
        response_path("req-2"),
        response_path("req-none"),
    ]
    echoed = [r.headers["Lambda-Runtime-Invocation-Id"] for r in answers]
    assert echoed == ["inv-0", "inv-1", "inv-2", None]


def test_proxy_settings_are_ignored(api: FakeRuntimeAPI) -> None:
    os.environ["HTTP_PROXY"] = os.environ["http_proxy"] = "http://127.0.0.1:9"
    api.add_event(b"{}", "req-1")
    run_loop(api, echo, 1)
    assert api.paths()[1] == ("POST", response_path("req-1"))


# --- the Extensions API ------------------------------------------------------------


class ExtensionsAPI(BaseHTTPRequestHandler):
    """Answers /register with ``status`` and, when given, an extension id."""

    status = 200
    extension_id: str | None = "ext-1"
    seen: list[tuple[str, str, dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(self.status)
        if self.extension_id:
            self.send_header("Lambda-Extension-Identifier", self.extension_id)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"refused!")

    def log_message(self, *args: Any) -> None:
        pass


def serving(status: int, extension_id: str | None) -> tuple[ThreadingHTTPServer, type]:
    handler = type(
        "Handler", (ExtensionsAPI,), {"status": status, "extension_id": extension_id, "seen": []}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, handler


@pytest.mark.parametrize(
    ("status", "extension_id", "error"),
    [
        (200, "ext-1", None),
        (200, None, r"^/extension/register answered without Lambda-Extension-Identifier$"),
        (500, "ext-1", r"^POST /extension/register: 500 refused!$"),
        (413, "ext-1", r"^POST /extension/register: 413 refused!$"),
    ],
)
def test_extension_registration_request_and_its_answers(
    status: int, extension_id: str | None, error: str | None
) -> None:
    server, handler = serving(status, extension_id)
    client = ExtensionsAPIClient(f"127.0.0.1:{server.server_address[1]}")
    try:
        if error is None:
            assert client.register("my-extension") == "ext-1"
        else:
            with pytest.raises(RuntimeAPIError, match=error):
                client.register("my-extension")
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    [(method, path, headers, body)] = handler.seen
    assert (method, path, body) == ("POST", "/2020-01-01/extension/register", b'{"events": []}')
    assert headers["Lambda-Extension-Name"] == "my-extension"
