"""runtime/client.py: one client for every request to Lambda, one reading of
the answers (check_status), whichever way the body goes: buffered, streamed,
or to the Extensions API. And the settings Config reads for the runtime's
opt-in features."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fake_runtime_api import NEXT, FakeRuntimeAPI, response_path

from runtime.client import ExtensionsAPIClient, RuntimeAPIClient, check_status
from runtime.config import Config, graceful_shutdown_setting
from runtime.errors import PayloadTooLarge, RuntimeAPIError
from runtime.handler import Handler
from runtime.logs import RequestIdFilter
from runtime.loop import InvokeLoop


@pytest.fixture
def api() -> Iterator[FakeRuntimeAPI]:
    with FakeRuntimeAPI() as api:
        yield api


def run_loop(api: FakeRuntimeAPI, handler: Handler, invocations: int) -> None:
    config = Config.from_env({"AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "app.handler"})
    client = RuntimeAPIClient(config.base_url)
    try:
        InvokeLoop(client, handler, config, RequestIdFilter(), environ={}).run(invocations)
    finally:
        client.close()


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


# --- Config: the opt-in settings ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "setting"),
    [(None, None), ("", None), ("1", True), ("yes", True), ("0", False), ("False", False)],
)
def test_graceful_shutdown_setting_has_one_rule(value: str | None, setting: bool | None) -> None:
    environ = {} if value is None else {"STATICLAMBDA_GRACEFUL_SHUTDOWN": value}
    assert graceful_shutdown_setting(environ) is setting
    env = {"AWS_LAMBDA_RUNTIME_API": "h:1", "_HANDLER": "m.f", **environ}
    assert Config.from_env(env).graceful_shutdown is setting


@pytest.mark.parametrize(("value", "on"), [(None, False), ("0", False), ("no", False), ("1", True)])
def test_init_trace_setting(value: str | None, on: bool) -> None:
    env = {"AWS_LAMBDA_RUNTIME_API": "h:1", "_HANDLER": "m.f"}
    if value is not None:
        env["STATICLAMBDA_INIT_TRACE"] = value
    assert Config.from_env(env).init_trace is on
