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
  * the body passes 200 MB (200 MiB), Lambda's limit for a streamed response
    since July 2025: the item that would pass it is not sent, the generator is
    closed, and the trailers say `Function.ResponseSizeTooLarge` with the
    limit and the size reached. Lambda sends the first 6 MB at full speed,
    the rest at up to 2 MB/s: the runtime's writes wait for it.

The stream is sent by the Runtime API client (``RuntimeAPIClient.post_streamed_response``);
this module holds only what a handler sees. It is imported only when a handler
returns a stream, or imports ``HttpResponse``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime import errors
from runtime.errors import Fault

OCTET_STREAM = "application/octet-stream"
# What a Function URL reads as prelude, separator, body.
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
# Between the JSON prelude and the body of an HTTP-integration response.
PRELUDE_SEPARATOR = b"\x00" * 8


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
