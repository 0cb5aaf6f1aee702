"""Response streaming: a handler's generator sent to Lambda as it is produced.

A handler that returns a generator or an iterator (not str, bytes, dict or
list) has its response streamed: one request, POST .../response with
``Lambda-Runtime-Function-Response-Mode: streaming`` and chunked transfer
encoding, one HTTP chunk per item the handler yields, sent as soon as it is
yielded. Behind a Function URL in RESPONSE_STREAM mode the caller reads the
chunks as they come.

    def handler(event, context):
        yield HttpResponse(200, {"Content-Type": "text/plain"})   # optional, first
        yield "hello "
        yield b"world"

Outcomes:
  * the handler fails before its first item: nothing was sent, the error goes
    to POST .../error, as for any handler (the loop does it);
  * it fails after: the bytes are on their way to the caller, so the error is
    sent as the trailers the request declared, ``Lambda-Runtime-Function-Error-
    Type`` and ``Lambda-Runtime-Function-Error-Body`` (the error payload, JSON,
    base64), and Lambda reports the invoke as failed;
  * the body passes 20 MiB, Lambda's limit for a streamed response: the item
    that would pass it is not sent, the generator is closed, and the trailers
    say `Function.ResponseSizeTooLarge` with the limit and the size reached.

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
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11

from runtime import errors, headers
from runtime.client import invocation_path
from runtime.config import API_VERSION
from runtime.errors import (
    ErrorPayload,
    Fault,
    PayloadTooLarge,
    RuntimeAPIError,
    header_error_type,
)

TRAILERS = (headers.FUNCTION_ERROR_TYPE, headers.FUNCTION_ERROR_BODY)

OCTET_STREAM = "application/octet-stream"
# What a Function URL reads as prelude, separator, body.
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
# Between the JSON prelude and the body of an HTTP-integration response.
PRELUDE_SEPARATOR = b"\x00" * 8

# Lambda's limit on a streamed response body.
MAX_STREAMED_BODY = 20 * 1024 * 1024
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


@dataclass(frozen=True)
class HttpResponse:
    """The status, headers and cookies of a Function URL's answer: yield it
    first, before the body.

    The response is then sent with the content type Lambda's HTTP integration
    expects, and this object as its JSON prelude, eight NUL bytes, the body.
    """

    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Sequence[str] = ()

    def prelude(self) -> bytes:
        prelude: dict[str, Any] = {"statusCode": self.status_code}
        if self.headers:
            prelude["headers"] = dict(self.headers)
        if self.cookies:
            prelude["cookies"] = list(self.cookies)
        return json.dumps(prelude).encode() + PRELUDE_SEPARATOR


class ResponseStream:
    """A handler's stream, its first item already taken.

    Taking the first item runs the handler's code up to its first ``yield``; an
    exception there propagates from the constructor, before any byte is sent,
    so the loop reports it to /error like any handler error.
    """

    def __init__(self, result: Iterator[Any]):
        self._items = result
        first = next(result, None)
        self.content_type = OCTET_STREAM
        self._first = b""
        if isinstance(first, HttpResponse):
            self.content_type = HTTP_INTEGRATION
            self._first = first.prelude()
        else:
            self._first = _chunk(first)

    def chunks(self) -> Iterator[bytes]:
        """Each item the handler yields, as bytes, with the prelude first."""
        yield self._first
        for item in self._items:
            if isinstance(item, HttpResponse):
                raise Fault(errors.MARSHAL_ERROR, "HttpResponse must be the stream's first item")
            yield _chunk(item)

    def close(self) -> None:
        """Run the generator's ``finally`` blocks when it is left unfinished."""
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


def _chunk(item: object) -> bytes:
    if item is None:
        return b""  # nothing to send, as an empty item
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise Fault(
        errors.MARSHAL_ERROR,
        f"Unable to stream response: items must be bytes or str, not {type(item).__name__}",
    )


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
    def __init__(self, runtime_api: str, request_id: str, content_type: str):
        host, _, port = runtime_api.rpartition(":")
        self.request_id = request_id
        self.path = f"/{API_VERSION}{invocation_path(request_id, 'response')}"
        self.content_type = content_type
        self._host = runtime_api
        self._address = (host.strip("[]"), int(port))
        self._conn = h11.Connection(h11.CLIENT)
        self._sock: socket.socket | None = None

    def send(self, stream: ResponseStream) -> StreamOutcome:
        """Send every chunk, then the trailers; returns once the API has answered.

        Raises ``RuntimeAPIError`` when the API cannot be reached or refuses the
        response (a 4xx/5xx), as the client does for a buffered one."""
        try:
            self._connect()
            self._write(
                h11.Request(
                    method="POST",
                    target=self.path,
                    headers=[
                        ("Host", self._host),
                        (headers.FUNCTION_RESPONSE_MODE, "streaming"),
                        ("Transfer-Encoding", "chunked"),
                        ("Content-Type", self.content_type),
                        ("Trailer", ", ".join(TRAILERS)),
                    ],
                )
            )
            outcome = self._send_body(stream)
            self._write(h11.EndOfMessage(headers=_trailers(outcome.error)))
            status, reason = self._read_response()
        except (OSError, h11.ProtocolError) as e:
            raise RuntimeAPIError(
                f"POST {self.path} (streaming): {type(e).__name__}: {e}"
            ) from None
        finally:
            self.close()
        if status == 413:
            raise PayloadTooLarge(f"POST {self.path} (streaming): 413 {reason}")
        if status >= 300:
            raise RuntimeAPIError(f"POST {self.path} (streaming): {status} {reason}")
        return outcome

    def _send_body(self, stream: ResponseStream) -> StreamOutcome:
        sent = 0
        chunks = stream.chunks()
        try:
            for chunk in chunks:
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
                self._write(h11.Data(data=chunk))
                sent += len(chunk)
        except (OSError, h11.ProtocolError):
            stream.close()
            raise  # the connection failed, not the handler
        except Exception as e:
            # After the first byte: the caller has a partial body; the trailers
            # tell Lambda the invoke failed, and why.
            return StreamOutcome(sent, ErrorPayload.from_exception(e, self.request_id), e)
        return StreamOutcome(sent, None)

    def _connect(self) -> None:
        self._sock = socket.create_connection(self._address)
        # Each chunk goes out when it is yielded, not when Nagle's algorithm
        # has gathered enough of them.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _write(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data and self._sock is not None:
            self._sock.sendall(data)

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
        text = body.decode(errors="replace").strip().replace("\n", " ")
        return status, text[:500] if text else reason

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _trailers(error: ErrorPayload | None) -> list[tuple[str, str]]:
    if error is None:
        return []
    body = base64.b64encode(error.to_json()).decode()
    return [
        (headers.FUNCTION_ERROR_TYPE, header_error_type(error.error_type)),
        (headers.FUNCTION_ERROR_BODY, body),
    ]
