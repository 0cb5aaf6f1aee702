"""Every request the runtime makes to Lambda, over HTTP: the Runtime API
(2018-06-01) and the Extensions API (2020-01-01).

Each method is one request; its path heads it. Buffered bodies go through one
long-lived httpx transport; a streamed response, which needs trailers httpx
cannot send, goes through h11 in ``runtime._streaming_http``, imported only
when a handler streams. Either way one function, ``check_status``, turns the
API's answer into ``RuntimeAPIError`` / ``PayloadTooLarge``, and transport
failures become ``RuntimeAPIError`` too. The client knows nothing of handlers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from runtime import headers
from runtime.errors import ErrorPayload, PayloadTooLarge, RuntimeAPIError, header_error_type
from runtime.transport import RuntimeAPITransport

if TYPE_CHECKING:
    from runtime._streaming_http import StreamOutcome
    from runtime.streaming import ResponseStream

EXTENSIONS_API_VERSION = "2020-01-01"

# Lambda's request ids are UUIDs; anything printable is accepted, nothing else.
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,256}")
_DIGITS = re.compile(r"[0-9]{1,20}")
# 9999-12-31T23:59:59.999Z: a deadline beyond it is no deadline Lambda gives.
MAX_DEADLINE_MS = 253_402_300_799_999

# No timeout at all: Lambda freezes the process between invokes, and a /next
# may wait for hours; connections to the Runtime API are never expected to time out.
NO_TIMEOUT = {"timeout": {"connect": None, "read": None, "write": None, "pool": None}}


@dataclass(frozen=True)
class Invocation:
    """One event, as GET /runtime/invocation/next delivers it."""

    request_id: str
    deadline_ms: int
    invoked_function_arn: str | None
    trace_id: str | None
    client_context: str | None
    cognito_identity: str | None
    tenant_id: str | None
    content_type: str | None
    body: bytes


class _HTTPClient:
    """One long-lived httpx transport: a pool of one keep-alive connection.

    Requests go to the transport directly, not through ``httpx.Client``: the
    client's cookies, auth, redirects, hooks and URL merging are of no use to
    Lambda's local APIs and cost about 0.2 ms per invoke (two requests) here.
    Nor does a proxy from HTTP_PROXY ever come between the runtime and them.
    """

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None):
        self._base_url = base_url
        self._transport = transport or RuntimeAPITransport()

    def close(self) -> None:
        self._transport.close()

    def _send(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
        url: httpx.URL | None = None,  # ``path``'s URL, when made once ahead
    ) -> httpx.Response:
        request = httpx.Request(
            method,
            url or f"{self._base_url}{path}",
            content=content,
            headers=extra_headers,
            extensions=NO_TIMEOUT,
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.HTTPError as e:
            raise transport_error(f"{method} {path}", e) from None
        check_status(f"{method} {path}", response.status_code, _reason(response))
        return response


class RuntimeAPIClient(_HTTPClient):
    """The Runtime API, at ``base_url`` (``Config.base_url``)."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None):
        super().__init__(base_url, transport)
        self._next_url = httpx.URL(f"{base_url}/runtime/invocation/next")
        # host:port, for the streamed response's own connection.
        self._runtime_api = self._next_url.netloc.decode()

    # GET /runtime/invocation/next
    def next_invocation(self) -> Invocation:
        response = self._send("GET", "/runtime/invocation/next", url=self._next_url)
        h = response.headers
        request_id = h.get(headers.REQUEST_ID)
        if not request_id:
            raise RuntimeAPIError(f"/next answered without a {headers.REQUEST_ID} header")
        if not _REQUEST_ID.fullmatch(request_id):
            # It goes into logs and URLs: printable ASCII only, as Lambda's are.
            raise RuntimeAPIError(f"/next answered with a {headers.REQUEST_ID} of {request_id!r}")
        return Invocation(
            request_id=request_id,
            deadline_ms=_deadline_ms(h.get(headers.DEADLINE_MS)),
            invoked_function_arn=h.get(headers.INVOKED_FUNCTION_ARN),
            trace_id=h.get(headers.TRACE_ID),
            client_context=h.get(headers.CLIENT_CONTEXT),
            cognito_identity=h.get(headers.COGNITO_IDENTITY),
            tenant_id=h.get(headers.TENANT_ID),
            content_type=h.get("Content-Type"),
            body=response.content,
        )

    # POST /runtime/invocation/{request_id}/response
    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        self._send(
            "POST",
            invocation_path(request_id, "response"),
            content=body,
            extra_headers={"Content-Type": content_type},
        )

    # POST /runtime/invocation/{request_id}/response, in streaming mode
    def post_streamed_response(self, request_id: str, stream: ResponseStream) -> StreamOutcome:
        """Send the stream as it is produced; returns once the API has answered.
        The handler's failure mid-stream is in the outcome (sent as trailers)."""
        # Imported here: only a streaming handler pays for it.
        from runtime._streaming_http import StreamingResponse

        return StreamingResponse(self._runtime_api, request_id, stream.content_type).send(stream)

    # POST /runtime/invocation/{request_id}/error
    def post_error(
        self, request_id: str, error: ErrorPayload, xray_cause: str | None = None
    ) -> None:
        extra_headers = {
            "Content-Type": "application/json",
            headers.FUNCTION_ERROR_TYPE: header_error_type(error.error_type),
        }
        if xray_cause is not None:
            extra_headers[headers.FUNCTION_XRAY_ERROR_CAUSE] = xray_cause
        self._send(
            "POST",
            invocation_path(request_id, "error"),
            content=error.to_json(),
            extra_headers=extra_headers,
        )

    # POST /runtime/init/error
    def post_init_error(self, error: ErrorPayload) -> None:
        self._send(
            "POST",
            "/runtime/init/error",
            content=error.to_json(),
            extra_headers={
                "Content-Type": "application/json",
                headers.FUNCTION_ERROR_TYPE: header_error_type(error.error_type),
            },
        )


class ExtensionsAPIClient(_HTTPClient):
    """The Extensions API, for the runtime's own internal extension
    (runtime/shutdown.py). Its own connection: its /event/next blocks for the
    life of the process, and the Runtime API client's one connection is the loop's."""

    def __init__(self, runtime_api: str, transport: httpx.BaseTransport | None = None):
        super().__init__(f"http://{runtime_api}/{EXTENSIONS_API_VERSION}", transport)

    # POST /2020-01-01/extension/register
    def register(self, name: str) -> str:
        """Register the extension ``name`` for no event; returns its id."""
        response = self._send(
            "POST",
            "/extension/register",
            content=b'{"events": []}',
            extra_headers={headers.EXTENSION_NAME: name, "Content-Type": "application/json"},
        )
        extension_id = str(response.headers.get(headers.EXTENSION_ID, ""))
        if not extension_id:
            raise RuntimeAPIError(f"/extension/register answered without {headers.EXTENSION_ID}")
        return extension_id

    # GET /2020-01-01/extension/event/next
    def next_event(self, extension_id: str) -> bytes:
        response = self._send(
            "GET", "/extension/event/next", extra_headers={headers.EXTENSION_ID: extension_id}
        )
        return response.content


def check_status(request: str, status: int, reason: str) -> None:
    """The one reading of the API's answer to ``request`` ("POST /path"): 2xx
    is success, 413 a payload refused as too large, anything else a failure."""
    if status == 413:
        raise PayloadTooLarge(f"{request}: 413 {reason}")
    if status >= 300:
        raise RuntimeAPIError(f"{request}: {status} {reason}")


def transport_error(request: str, error: Exception) -> RuntimeAPIError:
    """The API could not be reached, or broke the connection."""
    return RuntimeAPIError(f"{request}: {type(error).__name__}: {error}")


def invocation_path(request_id: str, endpoint: str) -> str:
    """``/runtime/invocation/{request_id}/{endpoint}``, the id escaped as one
    path segment: an id such as ``../../init`` from a broken or hostile API
    must not name another endpoint."""
    segment = quote(request_id, safe="-_~")  # dots too: no "." or ".." segment
    return f"/runtime/invocation/{segment.replace('.', '%2E')}/{endpoint}"


def _deadline_ms(value: str | None) -> int:
    """The Deadline-Ms header as epoch milliseconds; 0 (none) when it is not a
    plain number, and never past MAX_DEADLINE_MS, which every date and timer
    downstream can hold."""
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return 0
    return min(int(value), MAX_DEADLINE_MS)


def _reason(response: httpx.Response) -> str:
    """The API's own words for a refusal, on one line."""
    text = response.text.strip().replace("\n", " ")
    return text[:500] if text else response.reason_phrase
