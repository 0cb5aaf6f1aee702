"""Every request the runtime makes to Lambda, over HTTP: the Runtime API
(2018-06-01) and the Extensions API (2020-01-01).

Each method is one request; its path heads it. Buffered bodies go through one
long-lived httpx transport; a streamed response, which needs trailers httpx
cannot send, goes through h11 in ``runtime._streaming_http``, imported only
when a handler streams. Either way one function, ``check_status``, turns the
API's answer into the errors of runtime/errors.py. The client knows nothing
of handlers.

What is worth another try, and what is not:

- ``/next`` that cannot reach the API or is answered 5xx is tried again, up
  to NEXT_ATTEMPTS times, 0.1 s apart and doubling (1.5 s in all), as
  awslambdaric 4.2.2 does; then ``RuntimeAPIError``, and the runtime ends.
  ``/next`` itself has no timeout: it waits for an event, for hours if need be.
- A post for one invoke (its response or error) that the API refuses (400
  ``InvalidRequestID``: an invoke the platform aborted; 410 ``InvokeTimeout``:
  a late answer on Managed Instances; 413; any other) or that does not reach
  it raises ``InvokeLost``: that invoke is lost, and the loop takes the next
  event, whose ``/next`` finds out whether the API is still there.
- A post unanswered for POST_TIMEOUT_S raises ``NoAnswer``: a Runtime API that
  hangs is not one to wait on for ever.

Every request carries a User-Agent, and an invoke's answers echo the
invocation id its event came with, as awslambdaric's requests do.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from runtime import headers
from runtime.errors import (
    APIUnavailable,
    ErrorPayload,
    InvokeLost,
    NoAnswer,
    PayloadTooLarge,
    RuntimeAPIError,
    fit_error_report,
    header_error_type,
)
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

# No timeout on /next (and the Extensions API's event/next): Lambda freezes
# the process between invokes, and a /next may wait for hours.
NO_TIMEOUT = {"timeout": {"connect": None, "read": None, "write": None, "pool": None}}
# A post is answered as soon as the API has read it (well under a millisecond
# on the local Runtime API); one unanswered for this long never will be. Each
# wait is bounded by it: the connection, the body's sending (a streamed one's
# in pieces of 64 KiB, so that Lambda's throttle past the first 6 MB, 2 MB/s,
# is not taken for a hang), the answer.
POST_TIMEOUT_S = 10.0
POST_TIMEOUT = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), POST_TIMEOUT_S)}

# /next, when the API cannot be reached or answers 5xx: tried this many
# times in all, the first retry after NEXT_FIRST_DELAY_S, each later one after
# twice the last (0.1 + 0.2 + 0.4 + 0.8 = 1.5 s), as awslambdaric 4.2.2 does.
NEXT_ATTEMPTS = 5
NEXT_FIRST_DELAY_S = 0.1

# This runtime's release, as Lambda records it: the User-Agent's first token
# (at most 128 characters), in awslambdaric's form (aws-lambda-python/3.11.2-4.2.2).
VERSION = "0.1.0"
USER_AGENT = "staticlambda-python/{}.{}.{}-{}".format(*sys.version_info[:3], VERSION)


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
    # Lambda-Runtime-Invocation-Id, echoed with the invoke's answer; not always sent.
    invocation_id: str | None = None


# Told the request id and invocation id of the event /next is delivering, once
# its headers are read and before its body is (runtime/workers.py's slots).
Holding = Callable[[str, "str | None"], None]


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
        timeout: dict[str, Any] | None = None,  # POST_TIMEOUT
    ) -> httpx.Response:
        response = self._open(method, path, content, extra_headers, timeout or POST_TIMEOUT)
        try:
            response.read()
        except httpx.HTTPError as e:
            raise transport_error(f"{method} {path}", e) from None
        finally:
            response.close()
        check_status(f"{method} {path}", response.status_code, _reason(response))
        return response

    def _open(
        self,
        method: str,
        path: str,
        content: bytes | None,
        extra_headers: dict[str, str] | None,
        timeout: dict[str, Any],
        url: httpx.URL | None = None,  # ``path``'s URL, when made once ahead
    ) -> httpx.Response:
        """Send the request; the response with its headers read, not its body."""
        request = httpx.Request(
            method,
            url or f"{self._base_url}{path}",
            content=content,
            headers={headers.USER_AGENT: USER_AGENT, **(extra_headers or {})},
            extensions=timeout,
        )
        try:
            return self._transport.handle_request(request)
        except httpx.HTTPError as e:
            raise transport_error(f"{method} {path}", e) from None


class RuntimeAPIClient(_HTTPClient):
    """The Runtime API, at ``base_url`` (``Config.base_url``)."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None):
        super().__init__(base_url, transport)
        self._next_url = httpx.URL(f"{base_url}/runtime/invocation/next")
        # host:port, for the streamed response's own connection.
        self._runtime_api = self._next_url.netloc.decode()

    # GET /runtime/invocation/next
    def next_invocation(self, holding: Holding | None = None) -> Invocation:
        """The next event; ``holding`` is told its ids before its body is read.
        Tried again while the API cannot be reached or answers 5xx (see the
        module docstring); ``RuntimeAPIError`` once it gives up, or at once
        for an answer no retry can mend (a 4xx, an event without a request id)."""
        started = time.monotonic()
        delay = NEXT_FIRST_DELAY_S
        for attempt in range(1, NEXT_ATTEMPTS + 1):
            try:
                return self._next(holding)
            except APIUnavailable as e:
                if attempt == NEXT_ATTEMPTS:
                    took = time.monotonic() - started
                    raise APIUnavailable(
                        f"{e} (gave up after {attempt} attempts in {took:.1f} s)"
                    ) from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # for mypy: the loop returns or raises

    def _next(self, holding: Holding | None) -> Invocation:
        request = "GET /runtime/invocation/next"
        response = self._open(
            "GET", "/runtime/invocation/next", None, None, NO_TIMEOUT, self._next_url
        )
        try:
            if response.status_code >= 300:
                response.read()
                check_status(request, response.status_code, _reason(response))
            h = response.headers
            request_id = h.get(headers.REQUEST_ID)
            if not request_id:
                raise RuntimeAPIError(f"/next answered without a {headers.REQUEST_ID} header")
            if not _REQUEST_ID.fullmatch(request_id):
                # It goes into logs and URLs: printable ASCII only, as Lambda's are.
                raise RuntimeAPIError(
                    f"/next answered with a {headers.REQUEST_ID} of {request_id!r}"
                )
            invocation_id = h.get(headers.INVOCATION_ID)
            if invocation_id is not None and not _REQUEST_ID.fullmatch(invocation_id):
                invocation_id = None  # echoed in a header: never anything but printable
            if holding is not None:
                holding(request_id, invocation_id)
            body = response.read()
        except httpx.HTTPError as e:
            raise transport_error(request, e) from None
        finally:
            response.close()
        return Invocation(
            request_id=request_id,
            deadline_ms=_deadline_ms(h.get(headers.DEADLINE_MS)),
            invoked_function_arn=h.get(headers.INVOKED_FUNCTION_ARN),
            trace_id=h.get(headers.TRACE_ID),
            client_context=h.get(headers.CLIENT_CONTEXT),
            cognito_identity=h.get(headers.COGNITO_IDENTITY),
            tenant_id=h.get(headers.TENANT_ID),
            content_type=h.get("Content-Type"),
            body=body,
            invocation_id=invocation_id,
        )

    # POST /runtime/invocation/{request_id}/response
    def post_response(
        self,
        request_id: str,
        body: bytes,
        content_type: str,
        invocation_id: str | None = None,
    ) -> None:
        self._post_for_invoke(
            invocation_path(request_id, "response"),
            body,
            {"Content-Type": content_type},
            invocation_id,
        )

    # POST /runtime/invocation/{request_id}/response, in streaming mode
    def post_streamed_response(
        self, request_id: str, stream: ResponseStream, invocation_id: str | None = None
    ) -> StreamOutcome:
        """Send the stream as it is produced; returns once the API has answered.
        The handler's failure mid-stream is in the outcome (sent as trailers)."""
        # Imported here: only a streaming handler pays for it.
        from runtime._streaming_http import StreamingResponse

        response = StreamingResponse(
            self._runtime_api, request_id, stream.content_type, invocation_id
        )
        try:
            return response.send(stream)
        except (NoAnswer, InvokeLost):
            raise
        except RuntimeAPIError as e:
            raise InvokeLost(str(e)) from None

    # POST /runtime/invocation/{request_id}/error
    def post_error(
        self,
        request_id: str,
        error: ErrorPayload,
        xray_cause: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        """Post ``error``, cut to what Lambda accepts (errors.fit_error_report)."""
        extra_headers = {
            "Content-Type": "application/json",
            headers.FUNCTION_ERROR_TYPE: header_error_type(error.error_type),
        }
        if xray_cause is not None:
            extra_headers[headers.FUNCTION_XRAY_ERROR_CAUSE] = xray_cause
        self._post_for_invoke(
            invocation_path(request_id, "error"),
            fit_error_report(error).to_json(),
            extra_headers,
            invocation_id,
        )

    def _post_for_invoke(
        self,
        path: str,
        content: bytes,
        extra_headers: dict[str, str],
        invocation_id: str | None,
    ) -> None:
        """A post of one invoke's answer: whatever keeps it from Lambda but
        silence is ``InvokeLost`` (see the module docstring)."""
        if invocation_id is not None:
            extra_headers[headers.INVOCATION_ID] = invocation_id
        try:
            self._send("POST", path, content=content, extra_headers=extra_headers)
        except (NoAnswer, InvokeLost):
            raise
        except RuntimeAPIError as e:
            raise InvokeLost(str(e)) from None

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
            "GET",
            "/extension/event/next",
            extra_headers={headers.EXTENSION_ID: extension_id},
            timeout=NO_TIMEOUT,
        )
        return response.content


def check_status(request: str, status: int, reason: str) -> None:
    """The one reading of the API's answer to ``request`` ("POST /path"): 2xx
    is success, 413 a payload refused as too large, 5xx an API that may yet
    recover, anything else a refusal."""
    if status == 413:
        raise PayloadTooLarge(f"{request}: 413 {reason}")
    if status >= 500:
        raise APIUnavailable(f"{request}: {status} {reason}")
    if status >= 300:
        raise RuntimeAPIError(f"{request}: {status} {reason}")


def transport_error(request: str, error: Exception) -> RuntimeAPIError:
    """The API could not be reached, broke the connection, or did not answer
    in time (``NoAnswer``)."""
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        return NoAnswer(f"{request}: no answer in {POST_TIMEOUT_S:g} s ({type(error).__name__})")
    return APIUnavailable(f"{request}: {type(error).__name__}: {error}")


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
    return refusal_reason(response.content, response.reason_phrase)


def refusal_reason(body: bytes, reason_phrase: str) -> str:
    """The API's own words for a refusal, on one line: Lambda's error type and
    message ("InvokeTimeout: Invoke timeout") when the body is Lambda's error
    JSON, else the body's text, else the status line's reason."""
    text = body.decode(errors="replace").strip()
    if text.startswith("{"):
        try:
            error = json.loads(text)
            error_type, message = error["errorType"], error["errorMessage"]
        except (ValueError, TypeError, KeyError):
            pass
        else:
            text = f"{error_type}: {message}" if error_type and message else f"{error_type}"
    text = text.replace("\r", " ").replace("\n", " ")
    return text[:500] if text else reason_phrase
