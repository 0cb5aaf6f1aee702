"""The soft deadline: shortly before Lambda's deadline, log where the handler is.

Lambda kills a function that runs past its timeout without a word; this one
record (request id, time left, the handler's current stack) tells in CloudWatch
where it hung. It never stops the handler.

One watcher thread lives for the whole process and sleeps until the armed
deadline; arming and disarming per invoke is an assignment, and a notify only
when the watcher would otherwise sleep past the new deadline.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from types import FrameType

from runtime.errors import is_runtime_frame

# Longer than any Lambda timeout (15 minutes), far below threading.TIMEOUT_MAX.
MAX_WAIT_S = 3600.0


@dataclass(frozen=True)
class _Armed:
    request_id: str
    fire_at: float  # epoch seconds
    deadline_ms: int
    thread_id: int


class SoftDeadline:
    def __init__(self, margin_ms: int, logger: logging.Logger | None = None):
        self.margin_ms = margin_ms
        # Its own logger at WARNING, so the record shows whatever level the
        # function's logs are set to.
        self.logger = logger or logging.getLogger("staticlambda.deadline")
        self.logger.setLevel(logging.WARNING)
        self._armed: _Armed | None = None
        self._wake = threading.Condition()
        self._waiting_until: float | None = None  # the watcher's wake-up time; None: none
        self._thread: threading.Thread | None = None

    def arm(self, request_id: str, deadline_ms: int) -> None:
        if deadline_ms <= 0:
            return  # no deadline given: nothing to watch
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="soft-deadline", daemon=True)
            self._thread.start()
        armed = _Armed(
            request_id, (deadline_ms - self.margin_ms) / 1000, deadline_ms, threading.get_ident()
        )
        with self._wake:
            self._armed = armed
            # Wake the watcher only if it would otherwise sleep past this
            # deadline: usually it is waiting for the previous invoke's, which
            # is earlier, and then a wake-up (a thread switch per invoke) is saved.
            if self._waiting_until is None or armed.fire_at < self._waiting_until:
                self._wake.notify()

    def disarm(self) -> None:
        # No notify: the watcher wakes at the old time, finds nothing armed (or
        # a later deadline) and sleeps again.
        self._armed = None

    def _watch(self) -> None:
        with self._wake:
            while True:
                armed = self._armed
                if armed is None:
                    self._waiting_until = None
                    self._wake.wait()
                    continue
                delay = armed.fire_at - time.time()
                if delay > 0:
                    self._waiting_until = armed.fire_at
                    # Capped: a wait longer than the platform's timer holds
                    # raises OverflowError, and this thread would be gone for
                    # good; after a capped wait it simply looks again.
                    self._wake.wait(min(delay, MAX_WAIT_S))
                    continue
                self._armed = None
                self._report(armed)

    def _report(self, armed: _Armed) -> None:
        frame = sys._current_frames().get(armed.thread_id)
        left_ms = max(armed.deadline_ms - int(time.time() * 1000), 0)
        stack = "".join(traceback.format_list(handler_frames(frame)))
        self.logger.warning(
            "Soft deadline: request %s has %d ms left before Lambda's timeout; "
            "the handler is at:\n%s",
            armed.request_id,
            left_ms,
            stack.rstrip("\n") or "  (no Python frame)",
        )


def handler_frames(frame: FrameType | None) -> traceback.StackSummary:
    """The thread's stack from the handler down, without the runtime's frames."""
    frames = []
    while frame is not None and not is_runtime_frame(frame):
        frames.append(frame)
        frame = frame.f_back
    return traceback.StackSummary.extract(
        ((f, f.f_lineno) for f in reversed(frames)), capture_locals=False
    )
