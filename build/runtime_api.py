"""A Runtime API served on 127.0.0.1 by the build itself, for the places that
start the runtime without Lambda or the official emulator: the init check
(initcheck.py: one /next decides), the runtime's import measurement
(runtime_imports.py: a few scripted events) and the Managed Instances bench
(bench/runtime_api.py: N /next waiting at once). The test suite's fake
(tests/fake_runtime_api.py) answers through the same handler base.

What they share is the plumbing, not the script: the paths, a threaded server
on a free port whose threads never hold the build open, and one way to answer
a request that tolerates a runtime that has gone (killed at a deadline, or
stopped mid-request by the bench) instead of printing a traceback."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.config import API_VERSION

PREFIX = f"/{API_VERSION}/runtime"
NEXT = f"{PREFIX}/invocation/next"
INIT_ERROR = f"{PREFIX}/init/error"


class LocalRuntimeAPI(ThreadingHTTPServer):
    """A threaded HTTP server on a free 127.0.0.1 port, serving from a thread
    of its own as soon as it is made; ``api`` is what its handlers answer from."""

    daemon_threads = True  # a /next held open must not keep the build alive

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], api: object = None, poll: float = 0.5
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.api = api
        # ``poll``: how long close() may wait for the serving thread to notice.
        threading.Thread(target=self.serve_forever, args=(poll,), daemon=True).start()

    @property
    def address(self) -> str:
        """What AWS_LAMBDA_RUNTIME_API is set to."""
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime stopped mid-request resets its connection: expected here.
        # Anything else is a bug of the server's and is printed as one.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class RuntimeAPIHandler(BaseHTTPRequestHandler):
    """Reads a request's body and answers it; says nothing on the console."""

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(
        self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the runtime has gone (killed, or stopped waiting): nobody to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # what was asked is recorded by whoever serves, not printed
