"""The invoke loop: take the next event, run the handler, report the outcome.

The loop knows nothing of HTTP: it is handed a ``RuntimeAPIClient`` (aimed at a
fake server in tests). An invocation-level failure is reported and the loop
goes on; so does an answer the API refuses or never receives (``InvokeLost``:
an invoke aborted or timed out on Managed Instances, a response too large),
which costs that invoke only. A failing Runtime API ends it
(``RuntimeAPIError``: gone after /next's retries, or silent on a post).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.client import Invocation, RuntimeAPIClient
from runtime.config import TRACE_ENV, Config
from runtime.context import LambdaContext
from runtime.deadline import SoftDeadline
from runtime.errors import ErrorPayload, InvokeLost, RuntimeAPIError, xray_error_cause
from runtime.handler import Handler
from runtime.logs import RequestIdFilter, log_error, log_runtime
from runtime.marshal import marshal_response, unmarshal_event

if TYPE_CHECKING:
    from runtime.streaming import ResponseStream


@dataclass(frozen=True)
class Buffered:
    """A handler's result, marshalled whole."""

    body: bytes
    content_type: str


class InvokeLoop:
    def __init__(
        self,
        client: RuntimeAPIClient,
        handler: Handler,
        config: Config,
        request_id_filter: RequestIdFilter,
        environ: MutableMapping[str, str] = os.environ,
        soft_deadline: SoftDeadline | None = None,
    ):
        self.client = client
        self.handler = handler
        self.config = config
        self.request_id_filter = request_id_filter
        self.environ = environ
        self.soft_deadline = soft_deadline

    def run(self, max_invocations: int | None = None) -> None:
        """Serve events until the Runtime API fails (or ``max_invocations``, for tests)."""
        served = 0
        while max_invocations is None or served < max_invocations:
            self.handle(self.client.next_invocation())
            served += 1

    def handle(self, invocation: Invocation) -> None:
        """One invoke: context → handler → send, or report what failed."""
        request_id = invocation.request_id
        self._start(invocation)
        # The one place the soft deadline is armed and disarmed: around the
        # handler's code, which for a stream runs while the stream is sent.
        soft_deadline = self.soft_deadline
        if soft_deadline is not None:
            soft_deadline.arm(request_id, invocation.deadline_ms)
        try:
            response = self._call_handler(invocation)
            if response is not None and not isinstance(response, Buffered):
                self._send_stream(invocation, response)
                return
        finally:
            if soft_deadline is not None:
                soft_deadline.disarm()
        if response is not None:
            self._send(invocation, response)

    def _start(self, invocation: Invocation) -> None:
        self.request_id_filter.request_id = invocation.request_id
        self.request_id_filter.tenant_id = invocation.tenant_id
        # The X-Ray SDK reads the current trace from the environment; a stale
        # one from the previous invoke would attach segments to the wrong trace.
        if invocation.trace_id:
            self.environ[TRACE_ENV] = invocation.trace_id
        else:
            self.environ.pop(TRACE_ENV, None)

    def _call_handler(self, invocation: Invocation) -> Buffered | ResponseStream | None:
        """The handler's response, ready to send; None when the invoke failed
        (and was reported)."""
        try:
            context = LambdaContext.from_invocation(self.config, invocation)
            event = unmarshal_event(invocation.body, invocation.content_type)
            result = self.handler(event, context)
            if _is_stream(result):
                # Imported here: only a streaming handler pays for it.
                from runtime.streaming import ResponseStream

                # Runs the handler up to its first item: a failure before any
                # byte is sent is reported to /error, as below.
                return ResponseStream(result)
            return Buffered(*marshal_response(result))
        except Exception as e:
            self._report(invocation, e)
            return None
        except SystemExit as e:
            # The handler called sys.exit(): report it so the invoke is not
            # lost without a word, then let the process end as asked.
            self._report(invocation, e)
            raise

    def _send(self, invocation: Invocation, response: Buffered) -> None:
        self._deliver(
            f"response for {invocation.request_id} refused, {len(response.body)} bytes",
            lambda: self.client.post_response(
                invocation.request_id,
                response.body,
                response.content_type,
                invocation.invocation_id,
            ),
        )

    def _send_stream(self, invocation: Invocation, stream: ResponseStream) -> None:
        request_id = invocation.request_id

        def send() -> None:
            outcome = self.client.post_streamed_response(
                request_id, stream, invocation.invocation_id
            )
            if outcome.error is not None:
                # Sent to Lambda as trailers; logged as any handler error is.
                log_error(outcome.error, self.config.json_logs)

        self._deliver(f"streamed response for {request_id} refused", send)

    def _report(self, invocation: Invocation, exc: BaseException) -> None:
        """Report ``exc`` as the invoke's error. Only a failing Runtime API
        raises from here: whatever the exception, the invoke gets an answer."""
        request_id, invocation_id = invocation.request_id, invocation.invocation_id
        try:
            error = ErrorPayload.from_exception(exc, request_id)
            cause = xray_error_cause(exc, _working_directory())
        except Exception as failure:
            self._report_failed(invocation, exc, failure)
            return
        try:
            log_error(error, self.config.json_logs)
        except Exception as failure:  # a closed stdout, say: still report it
            _log_quietly(f"error for {request_id} not logged: {type(failure).__name__}")
        try:
            self._deliver(
                f"error report for {request_id} refused",
                lambda: self.client.post_error(request_id, error, cause, invocation_id),
            )
        except RuntimeAPIError:
            raise
        except Exception as failure:
            self._report_failed(invocation, exc, failure)

    def _report_failed(
        self, invocation: Invocation, exc: BaseException, failure: Exception
    ) -> None:
        """The minimal report, when the full one failed (a bug of ours, or an
        exception built to break it)."""
        request_id = invocation.request_id
        _log_quietly(
            f"error report for {request_id} failed ({type(failure).__name__}); "
            "posting a minimal one"
        )
        minimal = ErrorPayload.report_failed(exc, request_id)
        self._deliver(
            f"error report for {request_id} refused",
            lambda: self.client.post_error(
                request_id, minimal, invocation_id=invocation.invocation_id
            ),
        )

    @staticmethod
    def _deliver(refusal: str, post: Callable[[], None]) -> None:
        """Post something for an invoke. The API refusing it (as too large, as
        too late, for an invoke it aborted) or not receiving it loses the invoke
        (Lambda has answered the caller, or will), not the runtime: one line
        says which invoke and Lambda's reason. AWS's Python runtime crashes
        here outside Managed Instances; the execution environment need not."""
        try:
            post()
        except InvokeLost as e:
            log_runtime(f"{refusal}: {e}")


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
