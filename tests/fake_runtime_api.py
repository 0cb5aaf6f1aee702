"""An in-process fake of the Lambda Runtime API (2018-06-01): a real HTTP
server on 127.0.0.1 that serves scripted events from /next and records every
request the runtime makes, byte for byte.

    api = FakeRuntimeAPI()
    api.add_event(b'{"text":"Hello"}', "req-1", {"Lambda-Runtime-Trace-Id": "Root=1"})
    api.add_event(b"{}", "req-2", deadline_in_ms=800)  # deadline: 800 ms after /next serves it
    api.fail(response_path("req-1"), 413)      # answer that path with 413 (or 500)
    ... run the runtime against api.address ...
    api.requests                                # [Recorded(method, path, headers, body)]
    api.on_chunk = lambda path, chunk: ...      # called as each chunk of a chunked body arrives
    api.close()                                 # from now on, connections are refused

When the scripted events run out, /next answers 500: a runtime run as a
process then ends; the loop run in-process is ended by ``max_invocations``.

As Lambda Managed Instances' Runtime API, for a runtime serving N invokes at once:

    api = FakeRuntimeAPI(wait_for_events=True)  # /next waits for an event, as Lambda's does
    api.watch(process.pid)                      # record which process (or child of it) asked
    api.wait_for(lambda: len(api.served()) == 4)
    api.finish()                                # waiting and later /next answer 500

Concurrent requests are served each on its own thread. The Extensions API's
register and event/next (which waits like /next) are answered too, so that
graceful shutdown can be opted in against this fake.

Managed Instances' log socket (``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``), on
its own: each connection one stream of log lines, as awslambdaric writes them.

    with LogSocket(tmp_path / "logs.sock") as logs:  # env[LOG_SOCKET_ENV] = str(logs.path)
        ... run the runtime ...
    logs.streams()                              # [LogStream(pid, data)], one a connection

What Lambda (Managed Instances) does that the emulator cannot be made to do:

    api.fail(NEXT, 503, times=3)               # only the next 3 requests fail
    api.time_out("req-1")                      # its late answer: 410 InvokeTimeout, then 400
    api.abort("req-1")                         # an aborted invoke's answer: 400 InvalidRequestID
    api.hang(response_path("req-1"))           # read, recorded, never answered (until finish)
    api.add_event(b"{}", "req-1", hold_body=True)  # /next sends the headers, not the body...
    api.wait_until_reading_body("req-1")       # ...until the taker waits for it
    api.release_bodies()                       # ...and now the body
    sigterm_at = api.shut_down(process.pid)    # abort invokes in flight, SIGTERM the
                                               # group, SIGKILL it 600 ms later
    api.keep_chunks = False                    # count a chunked body's bytes, keep none
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import parse_headers
from pathlib import Path
from typing import Any

from build.runtime_api import INIT_ERROR, NEXT, PREFIX, LocalRuntimeAPI, RuntimeAPIHandler

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fake"
NO_MORE_EVENTS = (
    b'{"errorMessage":"fake Runtime API: no more events","errorType":"Fake.NoMoreEvents"}'
)
# Managed Instances' answers to a post for an invoke that timed out while its
# code ran on (once; later ones are 400), and for one the platform aborted:
# the emulator's rapi/rendering/render_error.go.
INVOKE_TIMEOUT = b'{"errorMessage":"Invoke timeout","errorType":"InvokeTimeout"}'
INVALID_REQUEST_ID = b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}'
# Managed Instances' SIGKILL, this long after SIGTERM (rapid/shutdown.go).
SHUTDOWN_WINDOW_S = 0.6


def response_path(request_id: str) -> str:
    return f"{PREFIX}/invocation/{request_id}/response"


def error_path(request_id: str) -> str:
    return f"{PREFIX}/invocation/{request_id}/error"


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Message  # case-insensitive .get(), as on the wire
    body: bytes
    # A chunked body (a streamed response): its chunks as they came, and its trailers.
    chunks: tuple[bytes, ...] = ()
    trailers: Message | None = None
    # The process that made the request (with ``watch``), when it arrived,
    # and for /next, the request id of the event it was answered with.
    pid: int | None = None
    at: float = 0.0
    served: str | None = None
    # The runtime's end of the connection (its port), and a chunked body's size.
    port: int = 0
    size: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
REQUEST_ID_HEADER = "Lambda-Runtime-Aws-Request-Id"


@dataclass(frozen=True)
class Event:
    body: bytes
    headers: dict[str, str]
    # The deadline, in ms from when /next serves the event (as Lambda stamps
    # it when the invoke starts), unless ``headers`` give one.
    deadline_in_ms: int | None = None
    hold_body: bool = False

    def served(self) -> dict[str, str]:
        """The headers as /next sends them now."""
        if self.deadline_in_ms is None:
            return self.headers
        return {**self.headers, DEADLINE_MS: str(int(time.time() * 1000) + self.deadline_in_ms)}


EXTENSION_REGISTER = "/2020-01-01/extension/register"
EXTENSION_NEXT = "/2020-01-01/extension/event/next"


class FakeRuntimeAPI:
    def __init__(self, wait_for_events: bool = False) -> None:
        self.requests: list[Recorded] = []
        self._events: deque[Event] = deque()
        self._failures: dict[str, tuple[int, bytes]] = {}
        self._failures_left: dict[str, int] = {}
        self._refusals: dict[str, list[tuple[int, bytes]]] = {}  # request id: answers to come
        self._hung: set[str] = set()
        self._bodies_released = threading.Event()
        self.keep_chunks = True
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wait_for_events = wait_for_events
        self._finished = False
        self._watched: int | None = None
        self.on_chunk: Callable[[str, bytes], None] | None = None
        self._server = LocalRuntimeAPI(_Handler, self, poll=0.05)
        self._closed = False

    @property
    def address(self) -> str:
        """host:port, as AWS_LAMBDA_RUNTIME_API gives it."""
        return self._server.address

    def add_event(
        self,
        body: bytes | str = b"{}",
        request_id: str = "req-1",
        headers: Mapping[str, str | None] | None = None,
        deadline_in_ms: int = 60_000,
        hold_body: bool = False,
    ) -> None:
        """Queue one event for /next. ``headers`` add to (or, with None, remove)
        the ones Lambda always sends. The deadline is stamped when /next serves
        the event, ``deadline_in_ms`` later, unless ``headers`` name one."""
        merged: dict[str, str | None] = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        data = body.encode() if isinstance(body, str) else body
        stamped = None if any(k.lower() == DEADLINE_MS.lower() for k in merged) else deadline_in_ms
        event = Event(data, {k: v for k, v in merged.items() if v is not None}, stamped, hold_body)
        with self._lock:
            self._events.append(event)
            self._changed.notify_all()

    def fail(self, path: str, status: int, body: bytes = b"", times: int | None = None) -> None:
        """Answer every request to ``path`` with ``status`` from now on, or
        only the next ``times`` of them."""
        if not body:
            body = json.dumps(
                {"errorMessage": f"fake {status}", "errorType": "Fake.Error"}
            ).encode()
        with self._lock:
            self._failures[path] = (status, body)
            if times is not None:
                self._failures_left[path] = times

    def time_out(self, request_id: str) -> None:
        """The invoke times out while its code runs on (Managed Instances): its
        answer, when it comes, is refused with 410, any later one with 400."""
        with self._lock:
            self._refusals[request_id] = [(410, INVOKE_TIMEOUT), (400, INVALID_REQUEST_ID)]

    def abort(self, request_id: str) -> None:
        """The platform aborts the invoke: its answer is refused with 400."""
        with self._lock:
            self._refusals[request_id] = [(400, INVALID_REQUEST_ID)]

    def hang(self, path: str) -> None:
        """Read and record every request to ``path``, and never answer it
        (until ``finish``)."""
        with self._lock:
            self._hung.add(path)

    def release_bodies(self) -> None:
        """Send the bodies of events added with ``hold_body``."""
        self._bodies_released.set()

    def wait_until_reading_body(self, request_id: str, timeout: float = 20) -> int:
        """Once /next has sent the headers of a held event: wait until the
        process that took it has read them and waits for the body (sleeping,
        nothing left unread on its socket, three looks in a row); its pid."""
        self.wait_for(lambda: request_id in self.served(), timeout)
        taken = self.served()[request_id]
        assert taken.pid is not None, "watch() the runtime's process first"
        steady = 0

        def reading() -> bool:
            nonlocal steady
            steady = steady + 1 if _waits_on_socket(taken.pid or 0, taken.port) else 0
            return steady >= 3

        self.wait_for(reading, timeout)
        return taken.pid

    def shut_down(self, pid: int, window: float = SHUTDOWN_WINDOW_S) -> float:
        """Shut the environment down as Managed Instances does: abort every
        invoke served and not yet answered, SIGTERM ``pid``'s process group,
        answer waiting /next (500), SIGKILL the group ``window`` s after the
        SIGTERM. Returns when the SIGTERM was sent (time.monotonic())."""
        with self._lock:
            answered = {r.path.split("/")[-2] for r in self.requests if r.method == "POST"}
            for request in self.requests:
                if request.served and request.served not in answered:
                    self._refusals[request.served] = [(400, INVALID_REQUEST_ID)]
        group = os.getpgid(pid)
        sigterm_at = time.monotonic()
        os.killpg(group, signal.SIGTERM)
        self.finish()
        time.sleep(max(0.0, sigterm_at + window - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        return sigterm_at

    def paths(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.method, r.path) for r in self.requests]

    def watch(self, pid: int) -> None:
        """Record, with each request, which process made it: ``pid`` or any
        process under it (found by the request's socket, in /proc)."""
        self._watched = pid

    def served(self) -> dict[str, Recorded]:
        """Each request id served by /next so far: the /next that took it."""
        with self._lock:
            return {r.served: r for r in self.requests if r.served is not None}

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake Runtime API: still waiting after {timeout} s")
            time.sleep(0.02)

    def finish(self) -> None:
        """No more events: waiting /next (and extension event/next) answer now."""
        with self._lock:
            self._finished = True
            self._changed.notify_all()

    def close(self) -> None:
        """Stop listening: the runtime's next connection is refused."""
        self.finish()
        if not self._closed:
            self._closed = True
            self._server.close()

    def __enter__(self) -> FakeRuntimeAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if request.path in self._failures:
                self.requests.append(request)
                status, body = self._failures[request.path]
                left = self._failures_left.get(request.path)
                if left is not None:
                    if left <= 1:
                        del self._failures[request.path], self._failures_left[request.path]
                    else:
                        self._failures_left[request.path] = left - 1
                return status, {"Content-Type": "application/json"}, body
            if request.path in self._hung:
                self.requests.append(request)
                while not self._finished:
                    self._changed.wait()
                return 500, {"Content-Type": "application/json"}, b"{}"
            refusals = self._refusals.get(_invoke_of(request))
            if request.method == "POST" and refusals:
                self.requests.append(request)
                status, body = refusals.pop(0) if len(refusals) > 1 else refusals[0]
                return status, {"Content-Type": "application/json"}, body
            if request.method == "GET" and request.path == NEXT:
                while self._wait_for_events and not self._events and not self._finished:
                    self._changed.wait()
                if not self._events:
                    self.requests.append(request)
                    return 500, {"Content-Type": "application/json"}, NO_MORE_EVENTS
                event = self._events.popleft()
                served = event.served()
                self.requests.append(
                    Recorded(**{**request.__dict__, "served": served.get(REQUEST_ID_HEADER, "")})
                )
                body = HeldBody(event.body) if event.hold_body else event.body
                return 200, served, body
            self.requests.append(request)
            if request.path == EXTENSION_REGISTER:
                return 200, {"Lambda-Extension-Identifier": "ext-1"}, b"{}"
            if request.path == EXTENSION_NEXT:
                while not self._finished:
                    self._changed.wait()
                return 500, {"Content-Type": "application/json"}, b"{}"
        if request.method == "POST" and (
            request.path == INIT_ERROR
            or (
                request.path.startswith(f"{PREFIX}/invocation/")
                and request.path.endswith(("/response", "/error"))
            )
        ):
            return 202, {"Content-Type": "application/json"}, b'{"status":"OK"}'
        return 404, {"Content-Type": "text/plain"}, b"not a Runtime API path"


class _Handler(RuntimeAPIHandler):
    # HTTP/1.0: one request per connection, so that after close() nothing is
    # left listening and "refused" is certain.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        api: FakeRuntimeAPI = self.server.api  # type: ignore[attr-defined]
        at = time.monotonic()
        pid = None if api._watched is None else _peer_pid(self.client_address[1], api._watched)
        port = self.client_address[1]
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks, trailers, size = self._read_chunked(api)
            recorded = Recorded(
                self.command,
                self.path,
                self.headers,
                b"".join(chunks),
                chunks,
                trailers,
                pid,
                at,
                port=port,
                size=size,
            )
        else:
            recorded = Recorded(
                self.command, self.path, self.headers, self.read_body(), pid=pid, at=at, port=port
            )
        # A waiting /next whose process has gone has nobody to answer: answer() says nothing.
        status, headers, body = api.answer(recorded)
        if isinstance(body, HeldBody):
            self._answer_held(api, status, headers, body)
        else:
            self.answer(status, headers, body)

    def _answer_held(
        self, api: FakeRuntimeAPI, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        """The status line and headers now, the body once ``release_bodies``."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            api._bodies_released.wait(60)
            self.wfile.write(bytes(body))
        except OSError:
            pass  # the process that took it is gone: nobody to send it to

    def _read_chunked(self, api: FakeRuntimeAPI) -> tuple[tuple[bytes, ...], Message, int]:
        chunks: list[bytes] = []
        received = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                return tuple(chunks), parse_headers(self.rfile), received
            chunk = self.rfile.read(size)
            if self.rfile.read(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            received += len(chunk)
            if api.keep_chunks:
                chunks.append(chunk)
            if api.on_chunk is not None:
                api.on_chunk(self.path, chunk)


class HeldBody(bytes):
    """An event's body that /next sends only once ``release_bodies`` is called."""


def _invoke_of(request: Recorded) -> str:
    """The request id a post to .../invocation/{id}/response or /error is for."""
    parts = request.path.split("/")
    if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
        return parts[4]
    return ""


def _waits_on_socket(pid: int, port: int) -> bool:
    """Whether ``pid``'s main thread sleeps with nothing left to read on its
    end of the connection from 127.0.0.1:``port``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/net/tcp") as table:
            lines = table.readlines()[1:]
    except OSError:
        return False
    local = f"0100007F:{port:04X}"
    for line in lines:
        fields = line.split()
        if fields[1] == local:
            unread = int(fields[4].split(":")[1], 16)
            return state == "S" and unread == 0
    return False


def _peer_pid(port: int, root: int) -> int | None:
    """The process, ``root`` or one under it, that holds the socket connected
    from 127.0.0.1:``port``: its inode from /proc/net/tcp, then the fd naming it."""
    inode = None
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == local:
                inode = fields[9]
                break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in _descendants(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return found


# --- Managed Instances' log socket ------------------------------------------------


@dataclass
class LogStream:
    """One connection to the log socket: the process that made it (its
    SO_PEERCRED pid) and every byte it sent."""

    pid: int
    data: bytearray

    def lines(self) -> list[str]:
        return self.data.decode("utf-8", "replace").split("\n")


class LogSocket:
    """A unix stream socket at ``path`` that takes any number of connections
    and keeps what each sends, read as it comes (a writer is never held up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._streams: list[LogStream] = []
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            credentials = connection.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            pid, _, _ = struct.unpack("3i", credentials)
            stream = LogStream(pid, bytearray())
            reader = threading.Thread(target=self._read, args=(connection, stream), daemon=True)
            with self._lock:
                self._streams.append(stream)
                self._readers.append(reader)
            reader.start()

    @staticmethod
    def _read(connection: socket.socket, stream: LogStream) -> None:
        with connection:
            while chunk := connection.recv(1 << 20):
                stream.data += chunk

    def streams(self, timeout: float = 30) -> list[LogStream]:
        """Every connection's stream, once each has been closed by its writer."""
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            reader.join(timeout)
        with self._lock:
            return list(self._streams)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> LogSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
