"""The invoke loop: take the next event, run the handler, report the outcome.

The loop knows nothing of HTTP: it is handed a ``RuntimeAPIClient`` (aimed at a
fake server in tests). An invocation-level failure is reported and the loop
goes on; only a failing Runtime API ends it (``RuntimeAPIError``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from runtime import headers
from runtime.client import Invocation, RuntimeAPIClient
from runtime.config import Config
from runtime.context import LambdaContext, parse_client_context, parse_cognito_identity
from runtime.deadline import SoftDeadline
from runtime.errors import ErrorPayload, PayloadTooLarge, RuntimeAPIError, xray_error_cause
from runtime.handler import Handler
from runtime.logs import RequestContext, log_error, log_runtime
from runtime.marshal import marshal_response, unmarshal_event

if TYPE_CHECKING:
    from runtime.streaming import ResponseStream


class InvokeLoop:
    def __init__(
        self,
        client: RuntimeAPIClient,
        handler: Handler,
        config: Config,
        request_context: RequestContext,
        environ: MutableMapping[str, str] = os.environ,
        soft_deadline: SoftDeadline | None = None,
    ):
        self.client = client
        self.handler = handler
        self.config = config
        self.request_context = request_context
        self.environ = environ
        self.soft_deadline = soft_deadline

    def run(self, max_invocations: int | None = None) -> None:
        """Serve events until the Runtime API fails (or ``max_invocations``, for tests)."""
        served = 0
        while max_invocations is None or served < max_invocations:
            self.handle(self.client.next_invocation())
            served += 1

    def handle(self, invocation: Invocation) -> None:
        request_id = invocation.request_id
        self.request_context.request_id = request_id
        self.request_context.tenant_id = invocation.tenant_id
        self._set_trace_id(invocation.trace_id)
        if self.soft_deadline is not None:
            self.soft_deadline.arm(request_id, invocation.deadline_ms)
        stream = None
        try:
            context = LambdaContext(
                self.config,
                request_id,
                invocation.deadline_ms,
                invocation.invoked_function_arn,
                parse_client_context(invocation.client_context),
                parse_cognito_identity(invocation.cognito_identity),
                invocation.tenant_id,
            )
            event = unmarshal_event(invocation.body, invocation.content_type)
            result = self.handler(event, context)
            if _is_stream(result):
                # Imported here: only a streaming handler pays for it.
                from runtime.streaming import ResponseStream

                # Runs the handler up to its first item: a failure before any
                # byte is sent is reported to /error, as below.
                stream = ResponseStream(result)
            else:
                body, content_type = marshal_response(result)
        except Exception as e:
            self._report(request_id, e)
            return
        except SystemExit as e:
            # The handler called sys.exit(): report it so the invoke is not
            # lost without a word, then let the process end as asked.
            self._report(request_id, e)
            raise
        finally:
            # A stream's handler code runs while it is sent: still watched.
            if self.soft_deadline is not None and stream is None:
                self.soft_deadline.disarm()
        if stream is not None:
            self._send_stream(request_id, stream)
            return
        try:
            self.client.post_response(request_id, body, content_type)
        except PayloadTooLarge as e:
            # AWS's Python runtime crashes here; the invoke is lost either way
            # (Lambda has answered the caller), the execution environment need not be.
            log_runtime(f"response for {request_id} refused, {len(body)} bytes: {e}")

    def _send_stream(self, request_id: str, stream: ResponseStream) -> None:
        from runtime.streaming import StreamingResponse

        try:
            response = StreamingResponse(self.config.runtime_api, request_id, stream.content_type)
            outcome = response.send(stream)
        except PayloadTooLarge as e:
            log_runtime(f"streamed response for {request_id} refused: {e}")
            return
        finally:
            if self.soft_deadline is not None:
                self.soft_deadline.disarm()
        if outcome.error is not None:
            # Sent to Lambda as trailers; logged as any handler error is.
            log_error(outcome.error, self.config.json_logs)

    def _report(self, request_id: str, exc: BaseException) -> None:
        """Report ``exc`` as the invoke's error. Only a failing Runtime API
        raises from here: whatever the exception, the invoke gets an answer."""
        try:
            error = ErrorPayload.from_exception(exc, request_id)
            cause = xray_error_cause(exc, _working_directory())
        except Exception as failure:
            self._report_failed(request_id, exc, failure)
            return
        try:
            log_error(error, self.config.json_logs)
        except Exception as failure:  # a closed stdout, say: still report it
            _log_quietly(f"error for {request_id} not logged: {type(failure).__name__}")
        try:
            self.client.post_error(request_id, error, cause)
        except PayloadTooLarge as e:
            log_runtime(f"error report for {request_id} refused: {e}")
        except RuntimeAPIError:
            raise
        except Exception as failure:
            self._report_failed(request_id, exc, failure)

    def _report_failed(self, request_id: str, exc: BaseException, failure: Exception) -> None:
        """The minimal report, when the full one failed (a bug of ours, or an
        exception built to break it)."""
        _log_quietly(
            f"error report for {request_id} failed ({type(failure).__name__}); "
            "posting a minimal one"
        )
        try:
            self.client.post_error(request_id, ErrorPayload.report_failed(exc, request_id))
        except PayloadTooLarge as e:
            log_runtime(f"error report for {request_id} refused: {e}")

    def _set_trace_id(self, trace_id: str | None) -> None:
        # The X-Ray SDK reads the current trace from the environment; a stale
        # one from the previous invoke would attach segments to the wrong trace.
        if trace_id:
            self.environ[headers.TRACE_ENV] = trace_id
        else:
            self.environ.pop(headers.TRACE_ENV, None)


def _is_stream(result: object) -> bool:
    """A result to stream (runtime/streaming.py): a generator or an iterator,
    and not a value AWS's runtime sends whole. Tested here, so that a buffered
    result does not import the streaming module to find out it is not one."""
    return not isinstance(result, (str, bytes, bytearray, dict, list)) and hasattr(
        type(result), "__next__"
    )


def _working_directory() -> str:
    # A handler may have removed the directory it moved into.
    try:
        return os.getcwd()
    except OSError:
        return ""


def _log_quietly(message: str) -> None:
    """``log_runtime``, for the error path: a log that fails must not stop the report."""
    with contextlib.suppress(Exception):
        log_runtime(message)
