"""The wire side of a streamed response: POST .../response with chunked
transfer encoding and trailers, driven with h11 over a plain socket. Private:
``RuntimeAPIClient.post_streamed_response`` imports it when a handler streams.

Why not httpx: httpx, and httpcore under it, cannot send trailers. httpcore
1.0 ends every request body with ``h11.EndOfMessage()`` (httpcore/_sync/
http11.py, ``_send_request_body``), with no way to pass it headers, and
neither library has a trailer API. But h11, the HTTP/1.1 state machine
httpcore itself is built on, does: ``h11.EndOfMessage(headers=...)`` writes
them after the last chunk. So this module drives h11 directly over a plain
socket to the Runtime API: the same wire code as the client's, one level down,
and h11 is already imported by then (httpcore imports it), so streaming costs
no new import. h11 also frames the chunks and parses the API's answer, which a
hand-written writer would have to get right itself.

The stream has its own connection, opened for the invoke and closed after it:
the client's pool keeps its one keep-alive connection for /next, and a local
TCP connect is cheap next to a response worth streaming. This module is
imported only when a handler returns a stream, so that the buffered path does
not pay for it.
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass

import h11

from runtime import client, headers
from runtime.client import (
    USER_AGENT,
    check_status,
    invocation_path,
    refusal_reason,
    transport_error,
)
from runtime.config import API_VERSION
from runtime.errors import ErrorPayload, fit_error_report, header_error_type
from runtime.streaming import ResponseStream

TRAILERS = (headers.FUNCTION_ERROR_TYPE, headers.FUNCTION_ERROR_BODY)

# Lambda's limit on a streamed response body: 200 MB (since July 2025), of
# which the first 6 MB go at full speed and the rest at up to 2 MB/s.
MAX_STREAMED_BODY = 200 * 1024 * 1024
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
# A chunk goes out in pieces of this size, each within POST_TIMEOUT_S: a large
# item throttled at Lambda's slowest rate is not taken for an API that hangs.
PIECE = 64 * 1024
# Lambda's Runtime API (Go's net/http) reads a request's trailers within its
# connection's 4 KiB buffer: longer ones fail the whole response ("http:
# suspiciously long trailer after chunked body") and the runtime is reset. The
# error sent as trailers is cut to fit, base64 (4/3) and header names included.
MAX_TRAILERS = 4096


@dataclass(frozen=True)
class StreamOutcome:
    """What was sent: the body's size, and the error sent as trailers, if any."""

    body_bytes: int
    error: ErrorPayload | None
    exception: BaseException | None = None  # what the handler raised, for logging


class StreamingResponse:
    """One streamed POST .../response, on its own connection to ``runtime_api``
    (host:port, as AWS_LAMBDA_RUNTIME_API gives it)."""

    # POST /runtime/invocation/{request_id}/response, in streaming mode
    def __init__(
        self,
        runtime_api: str,
        request_id: str,
        content_type: str,
        invocation_id: str | None = None,
    ):
        host, _, port = runtime_api.rpartition(":")
        self.request_id = request_id
        self.invocation_id = invocation_id
        self.path = f"/{API_VERSION}{invocation_path(request_id, 'response')}"
        self.content_type = content_type
        self._host = runtime_api
        self._address = (host.strip("[]"), int(port))
        self._conn = h11.Connection(h11.CLIENT)
        self._sock: socket.socket | None = None

    def send(self, stream: ResponseStream) -> StreamOutcome:
        """Send every chunk, then the trailers; returns once the API has answered.

        Raises ``RuntimeAPIError`` when the API cannot be reached or refuses the
        response (a 4xx/5xx), ``NoAnswer`` when a write or the answer takes
        longer than POST_TIMEOUT_S, as the client does for a buffered one."""
        request_headers = [
            ("Host", self._host),
            (headers.USER_AGENT, USER_AGENT),
            (headers.FUNCTION_RESPONSE_MODE, "streaming"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", self.content_type),
            ("Trailer", ", ".join(TRAILERS)),
        ]
        if self.invocation_id is not None:
            request_headers.append((headers.INVOCATION_ID, self.invocation_id))
        try:
            self._connect()
            self._write(h11.Request(method="POST", target=self.path, headers=request_headers))
            outcome = self._send_body(stream)
            self._write(h11.EndOfMessage(headers=_trailers(outcome.error)))
            status, reason = self._read_response()
        except (OSError, h11.ProtocolError) as e:
            raise transport_error(f"POST {self.path} (streaming)", e) from None
        finally:
            self.close()
        check_status(f"POST {self.path} (streaming)", status, reason)
        return outcome

    def _send_body(self, stream: ResponseStream) -> StreamOutcome:
        sent = 0
        chunks = stream.chunks()
        while True:
            try:
                chunk = next(chunks, None)
            except Exception as e:
                # The handler failed (an OSError of its own too) after the first
                # byte: the caller has a partial body; the trailers tell Lambda
                # the invoke failed, and why.
                return StreamOutcome(sent, ErrorPayload.from_exception(e, self.request_id), e)
            if chunk is None:
                return StreamOutcome(sent, None)
            if not chunk:
                continue  # an empty chunk would end the body
            if sent + len(chunk) > MAX_STREAMED_BODY:
                stream.close()
                error = ErrorPayload(
                    f"Response payload size exceeded maximum allowed payload size "
                    f"({MAX_STREAMED_BODY} bytes): {sent} bytes sent, the next "
                    f"{len(chunk)} were not",
                    RESPONSE_TOO_LARGE,
                    self.request_id,
                )
                return StreamOutcome(sent, error)
            try:
                self._write(h11.Data(data=chunk))
            except BaseException:
                stream.close()
                raise  # the connection failed, not the handler
            sent += len(chunk)

    def _connect(self) -> None:
        # The timeout bounds the connection, each piece written, the answer.
        self._sock = socket.create_connection(self._address, timeout=client.POST_TIMEOUT_S)
        # Each chunk goes out when it is yielded, not when Nagle's algorithm
        # has gathered enough of them.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _write(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if not data or self._sock is None:
            return
        if len(data) <= PIECE:
            self._sock.sendall(data)
            return
        view = memoryview(data)
        for at in range(0, len(view), PIECE):
            self._sock.sendall(view[at : at + PIECE])

    def _read_response(self) -> tuple[int, str]:
        assert self._sock is not None
        status, reason, body = 0, "", b""
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                self._conn.receive_data(self._sock.recv(65536))
            elif isinstance(event, h11.Response):
                status, reason = event.status_code, event.reason.decode(errors="replace")
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        return status, refusal_reason(body, reason)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _trailers(error: ErrorPayload | None) -> list[tuple[str, str]]:
    if error is None:
        return []
    error_type = header_error_type(error.error_type)[:256]
    # What the names, separators and CRLFs leave, with a margin, as JSON before base64.
    room = (MAX_TRAILERS - 256 - len(error_type)) * 3 // 4
    body = base64.b64encode(fit_error_report(error, room).to_json()).decode()
    return [(headers.FUNCTION_ERROR_TYPE, error_type), (headers.FUNCTION_ERROR_BODY, body)]
