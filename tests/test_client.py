"""runtime/client.py: one client for every request to Lambda, one reading of
the answers (check_status), whichever way the body goes: buffered, streamed,
or to the Extensions API; and how a failing Runtime API ends the loop
(the client's error, one line)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fake_runtime_api import NEXT, FakeRuntimeAPI, error_path, response_path
from support import Calls, echo, run_loop

from runtime.client import ExtensionsAPIClient, RuntimeAPIClient, check_status
from runtime.errors import PayloadTooLarge, RuntimeAPIError


def streams(event: Any, context: Any) -> Iterator[bytes]:
    yield b"chunk"


def test_check_status_is_the_one_reading_of_an_answer() -> None:
    check_status("POST /x", 202, "Accepted")
    with pytest.raises(PayloadTooLarge, match=r"^POST /x: 413 too big$"):
        check_status("POST /x", 413, "too big")
    with pytest.raises(RuntimeAPIError, match=r"^POST /x: 500 broken$") as e:
        check_status("POST /x", 500, "broken")
    assert not isinstance(e.value, PayloadTooLarge)


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


def test_streamed_response_answered_500_ends_the_loop(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.fail(response_path("req-1"), 500)
    with pytest.raises(RuntimeAPIError, match=r"\(streaming\): 500 "):
        run_loop(api, streams, 1)


def test_streamed_response_to_an_api_that_is_gone_is_a_runtime_api_error() -> None:
    client = RuntimeAPIClient("http://127.0.0.1:1/2018-06-01")
    from runtime.streaming import ResponseStream

    with pytest.raises(RuntimeAPIError, match=r"\(streaming\): ConnectionRefusedError: "):
        client.post_streamed_response("req-1", ResponseStream(iter([b"a"])))


# --- the Runtime API failing ends the loop --------------------------------------


def test_500_from_next_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    api.fail(NEXT, 500, b'{"errorMessage":"boom","errorType":"ServiceException"}')
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, echo, 1)
    assert str(e.value) == (
        'GET /runtime/invocation/next: 500 {"errorMessage":"boom","errorType":"ServiceException"}'
    )


def test_500_from_response_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    api.fail(response_path("req-1"), 500, b"internal")
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, echo, 2)
    assert str(e.value) == "POST /runtime/invocation/req-1/response: 500 internal"
    assert api.paths() == [("GET", NEXT), ("POST", response_path("req-1"))]


def test_500_from_error_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.fail(error_path("req-1"), 500, b"")
    with pytest.raises(RuntimeAPIError, match=r"^POST /runtime/invocation/req-1/error: 500 "):
        run_loop(api, Calls(raises=ValueError("x")), 1)


def test_refused_next_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    api.close()
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, echo, 1)
    assert str(e.value).startswith("GET /runtime/invocation/next: ConnectError: ")
    assert "Connection refused" in str(e.value)
    assert "\n" not in str(e.value)


def test_refused_response_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    def handler(event: Any, context: Any) -> Any:
        api.close()  # the API goes away while the handler runs
        return "done"

    api.add_event(b"{}", "req-1")
    with pytest.raises(RuntimeAPIError, match=r"^POST /runtime/invocation/req-1/response: Connect"):
        run_loop(api, handler, 1)


def test_next_without_request_id_raises_runtime_api_error(api: FakeRuntimeAPI) -> None:
    calls = Calls()
    api.add_event(b"{}", headers={"Lambda-Runtime-Aws-Request-Id": None})
    with pytest.raises(RuntimeAPIError) as e:
        run_loop(api, calls, 1)
    assert str(e.value) == "/next answered without a Lambda-Runtime-Aws-Request-Id header"
    assert calls.events == []


def test_no_timeout_on_any_runtime_api_request() -> None:
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
    assert seen == [no_timeout, no_timeout]


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
