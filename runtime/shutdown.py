"""Graceful shutdown: callbacks that run once when Lambda shuts the execution
environment down.

    from runtime.shutdown import on_shutdown

    @on_shutdown
    def close_pool() -> None:
        pool.close()

Lambda sends the runtime SIGTERM before it stops an environment only when an
extension is registered; otherwise it is SIGKILL, without a word. So, when
opted in (``STATICLAMBDA_GRACEFUL_SHUTDOWN=1``, or a handler module that
registered a callback at import), the runtime registers a minimal *internal*
extension of its own during init (Extensions API 2020-01-01):

    POST /2020-01-01/extension/register   Lambda-Extension-Name, {"events": []}
    GET  /2020-01-01/extension/event/next (from a thread; it never returns)

It subscribes no event: an internal extension may not subscribe SHUTDOWN (it
is the runtime's own process: it learns of the shutdown by SIGTERM), and one
subscribed to INVOKE would have to call /event/next after every invoke, or
Lambda would hold each invoke open until it did. The /event/next call is still
due once, to tell Lambda the extension's init is done.

On SIGTERM the callbacks run, in the order they were registered, each one's
exception logged and the next one run; then the process exits with status 0,
which lets the static bootstrap's loader remove its extraction directory
from /tmp. Lambda allows the runtime about 500 ms for all of it.

With Lambda Managed Instances (AWS_LAMBDA_MAX_CONCURRENCY > 1, runtime/workers.py)
the parent registers the extension, once, during init. The platform aborts the
invokes in flight, then sends SIGTERM to the process group and SIGKILL about
600 ms later: each worker runs the callbacks at once, whatever invoke it is
running, once, in its own process, where the state they close or flush lives,
and exits; the parent, which never ran an invoke, runs none (the order is in
runtime/workers.py's docstring).

The signal may come more than once: the static bootstrap is two processes
(staticx's loader, then the program: PyInstaller's bootloader and Python in one
process), and the loader passes on the signal it gets, as Lambda or an
emulator may signal the whole group. The first SIGTERM runs the callbacks; any
later one is ignored, and the callbacks never run twice.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

from runtime.client import ExtensionsAPIClient
from runtime.config import graceful_shutdown_setting
from runtime.errors import RuntimeAPIError
from runtime.logs import log_runtime

EXTENSION_NAME = "staticlambda-graceful-shutdown"

Callback = Callable[[], object]


class ShutdownCallbacks:
    """The callbacks, and the guard that runs them once."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._ran = threading.Lock()

    def add(self, callback: Callback) -> Callback:
        self._callbacks.append(callback)
        return callback

    def __len__(self) -> int:
        return len(self._callbacks)

    def run_once(self) -> bool:
        """Run every callback, unless they ran (or are running) already."""
        if not self._ran.acquire(blocking=False):
            return False  # never released: a second call is always a no-op
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception as e:
                name = getattr(callback, "__qualname__", repr(callback))
                log_runtime(f"shutdown callback {name} failed: {type(e).__name__}: {e}")
        return True


# Process-wide, as SIGTERM is: handler modules register at import, before the
# runtime has made anything they could be handed to.
callbacks = ShutdownCallbacks()


def on_shutdown(callback: Callback) -> Callback:
    """Run ``callback()`` once when Lambda shuts the environment down; usable as
    a decorator. Registering one opts the function in to graceful shutdown."""
    return callbacks.add(callback)


def requested(environ: Mapping[str, str]) -> bool:
    """Opted in: by the environment, else by a registered callback. The
    environment's 0/false/no turns it off even then."""
    setting = graceful_shutdown_setting(environ)
    return setting if setting is not None else len(callbacks) > 0


class InternalExtension:
    """The runtime's own, do-nothing extension, registered through the
    Extensions API client."""

    def __init__(self, runtime_api: str):
        self._api = ExtensionsAPIClient(runtime_api)
        self.extension_id = ""

    def register(self) -> str:
        self.extension_id = self._api.register(EXTENSION_NAME)
        return self.extension_id

    def wait(self) -> None:
        """Say init is done, then wait: with no event subscribed, for ever."""
        try:
            while True:
                self._api.next_event(self.extension_id)
        except RuntimeAPIError:
            pass  # the environment is going away; SIGTERM does the rest


def install(runtime_api: str, environ: Mapping[str, str]) -> bool:
    """Enable graceful shutdown if ``requested``; whether it is on. A failed
    registration is logged, not fatal: the function serves on without it."""
    if not requested(environ):
        return False
    try:
        enable(runtime_api)
    except RuntimeAPIError as e:
        log_runtime(
            f"graceful shutdown is off: the extension did not register: {e}", logging.WARNING
        )
        return False
    return True


def enable(runtime_api: str) -> None:
    """Register the extension and take over SIGTERM; call from the main thread,
    during init (before the first /next). Raises ``RuntimeAPIError`` when the
    extension cannot be registered."""
    extension = InternalExtension(runtime_api)
    extension.register()
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=extension.wait, name="shutdown-extension", daemon=True).start()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Any later SIGTERM (passed on by the bootstrap's parents) is ignored from
    # here on, so it cannot interrupt the callbacks.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log_runtime(f"SIGTERM: running {len(callbacks)} shutdown callback(s)", logging.INFO)
    callbacks.run_once()
    # Unwinds the loop wherever it waits (/next, usually), so that the process
    # exits as normal and the bootstrap's parents clean up after it.
    raise SystemExit(0)
