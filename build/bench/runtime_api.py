"""The Runtime API as Lambda Managed Instances have it, for the Managed Instances
bench (managed.py): every /next waits, on its own thread, for an event, so N
workers can each hold one at once. The official emulator serves one invoke at a
time, so the bench serves both runtimes from this, as Lambda's does on a capacity
provider."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from build.bench.candidates import EVENT
from build.errors import BenchError
from build.runtime_api import NEXT, LocalRuntimeAPI, RuntimeAPIHandler

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"


class ConcurrentRuntimeAPI:
    """The Runtime API as Lambda Managed Instances have it, for the bench:
    every /next waits (on its own thread) for an event; counts who waits and
    what was answered."""

    def __init__(self) -> None:
        self._events: deque[bytes] = deque()
        self._changed = threading.Condition()
        self.waiting = 0
        self.responses = 0
        self.errors: list[str] = []
        self._served = 0
        self._closed = False
        self._server = LocalRuntimeAPI(_APIHandler, self)

    @property
    def address(self) -> str:
        return self._server.address

    def add_events(self, count: int) -> None:
        with self._changed:
            self._events.extend([EVENT] * count)
            self._changed.notify_all()

    def next_event(self) -> tuple[str, bytes] | None:
        with self._changed:
            self.waiting += 1
            self._changed.notify_all()
            while not self._events and not self._closed:
                self._changed.wait()
            self.waiting -= 1
            if self._closed:
                return None
            self._served += 1
            return f"bench-{self._served}", self._events.popleft()

    def answered(self, path: str) -> None:
        with self._changed:
            if path.endswith("/response"):
                self.responses += 1
            else:
                self.errors.append(path)
            self._changed.notify_all()

    def wait_until(self, what: str, done: Any, timeout: float = 120) -> float:
        """Block until ``done()`` holds (under the lock); returns when it did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out waiting for {what}")
                self._changed.wait(min(left, 0.5))
            return time.monotonic()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._server.close()


class _APIHandler(RuntimeAPIHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as both runtimes use it

    def do_GET(self) -> None:
        api: ConcurrentRuntimeAPI = self.server.api  # type: ignore[attr-defined]
        event = api.next_event() if self.path == NEXT else None
        if event is None:
            self.answer(500, {}, b'{"errorType":"Bench.Closed"}')
            return
        request_id, body = event
        deadline = str(int(time.time() * 1000) + 60_000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": deadline,
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Content-Type": "application/json",
        }
        self.answer(200, headers, body)

    def do_POST(self) -> None:
        api: ConcurrentRuntimeAPI = self.server.api  # type: ignore[attr-defined]
        self.read_body()
        api.answered(self.path)
        self.answer(202, {}, b'{"status":"OK"}')
