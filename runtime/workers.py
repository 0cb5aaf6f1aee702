"""Lambda Managed Instances: up to AWS_LAMBDA_MAX_CONCURRENCY invokes at once,
initialised once.

On a capacity provider, Lambda sends one execution environment up to N invokes
at the same time; its Runtime API accepts N concurrent ``/next``. AWS's Python
runtime serves them with N processes, each importing the handler itself. Here
the runtime starts and imports the handler once, then forks N workers, which
share the initialised memory copy-on-write:

    parent (Supervisor)      init; forks the workers; waits; replaces a dead
    │                        one, and reports the invoke it held; on SIGTERM
    │                        passes it on, waits for them all, exits
    └── worker x N (Worker)  runtime/loop.py's handle, one invoke at a time:
                             its own Runtime API client (no socket of the
                             parent's), request id, _X_AMZN_TRACE_ID, context

The parent never runs handler code after init. Each worker writes the request
id it holds into its slot of a small shared-memory table (``Slots``) as it takes
an invoke, and clears it when the invoke has been answered; a worker that dies
(``os._exit``, a segfault, the OOM killer) leaves its id there, and the parent,
which reads a slot only once its worker is dead, posts that invoke's error
(Lambda's ``Runtime.ExitError``) before forking the replacement.

SIGTERM: a worker waiting on ``/next`` stops at once; one running an invoke
finishes it (the response is sent) and then stops; each runs the shutdown
callbacks (runtime/shutdown.py), if opted in, once in its own process, where
the handler's state (its buffers, the connections it opened) lives. The parent
runs none: it never ran an invoke, and what it holds from init each worker holds too.
A worker always ends with ``os._exit``, never by returning through the
parent's stack: the clean-up that belongs to the parent (the bootstrap's
extraction locks, atexit handlers) is never run by a worker.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import mmap
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from runtime.client import RuntimeAPIClient
from runtime.config import Config
from runtime.deadline import SoftDeadline
from runtime.errors import RUNTIME_EXIT_ERROR, ErrorPayload, RuntimeAPIError
from runtime.handler import Handler
from runtime.logs import RequestIdFilter, log_error, log_runtime
from runtime.logsink import streams
from runtime.loop import InvokeLoop

# A slot: its state, the request id's length (2 bytes), the id (Lambda's are
# at most 256 printable bytes; runtime/client.py refuses longer ones).
IDLE, HOLDING, API_FAILED = 0, 1, 2
MAX_REQUEST_ID = 256
SLOT_SIZE = 1 + 2 + MAX_REQUEST_ID

# A worker dying with no invoke held, this many times in a row per worker,
# is a fault of its start, not of one invoke: replacing it again would spin.
MAX_IDLE_DEATHS_PER_WORKER = 3


class Slots:
    """One slot per worker in anonymous shared memory (MAP_SHARED: the
    parent and every worker forked after it see the same bytes). A worker
    writes only its own slot; the parent reads it only once the worker is
    dead, so no write is ever seen half done."""

    def __init__(self, count: int):
        self._memory = mmap.mmap(-1, count * SLOT_SIZE)

    def hold(self, index: int, request_id: str) -> None:
        data = request_id.encode()[:MAX_REQUEST_ID]
        at = index * SLOT_SIZE
        self._memory[at + 3 : at + 3 + len(data)] = data
        self._memory[at + 1 : at + 3] = len(data).to_bytes(2, "little")
        self._memory[at] = HOLDING

    def set_state(self, index: int, state: int) -> None:
        self._memory[index * SLOT_SIZE] = state

    def read(self, index: int) -> tuple[int, str]:
        at = index * SLOT_SIZE
        state = self._memory[at]
        length = int.from_bytes(self._memory[at + 1 : at + 3], "little")
        return state, self._memory[at + 3 : at + 3 + length].decode(errors="replace")


class _Stopped(Exception):
    """Raised by a worker's SIGTERM handler out of a ``/next`` it waits on."""


class Worker:
    """A worker's loop: ``/next`` on the invoke loop's own client, then its
    ``handle``, the request id in the worker's slot while it holds the invoke."""

    def __init__(self, loop: InvokeLoop, slots: Slots, index: int):
        self.loop = loop
        self.slots = slots
        self.index = index
        self.stopping = False
        self._waiting = False

    def run(self) -> None:
        """Serve invokes until SIGTERM; ``RuntimeAPIError`` if the API fails."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            while not self.stopping:
                self._waiting = True
                try:
                    invocation = self.loop.client.next_invocation()
                finally:
                    self._waiting = False
                self.slots.hold(self.index, invocation.request_id)
                try:
                    self.loop.handle(invocation)
                finally:
                    # Also after sys.exit() in the handler: the loop reported it.
                    self.slots.set_state(self.index, IDLE)
        except _Stopped:
            pass

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        # Waiting for an invoke: stop now. Running one: the loop stops after it.
        # (An invoke whose /next answer is being read as the signal lands is
        # lost with the worker; Lambda sends none once it is shutting down.)
        if self._waiting:
            raise _Stopped


def serve(
    config: Config,
    handler: Handler,
    request_id_filter: RequestIdFilter,
    shutdown_callbacks: bool,
) -> int:
    """After init, with ``config.max_concurrency`` > 1: fork the workers and
    supervise them until SIGTERM or a failing Runtime API; the parent's exit status."""

    def run_worker(slots: Slots, index: int) -> int:
        # Its own log output first: its own lock (or log socket connections).
        unusable = streams.start_worker(config.log_socket)
        if unusable:
            log_runtime(unusable, logging.WARNING)
        client = RuntimeAPIClient(config.base_url)  # its own connection, made after fork
        margin = config.soft_deadline_margin_ms
        loop = InvokeLoop(
            client,
            handler,
            config,
            request_id_filter,
            soft_deadline=SoftDeadline(margin) if margin > 0 else None,
        )
        worker = Worker(loop, slots, index)
        try:
            worker.run()
        except RuntimeAPIError as e:
            slots.set_state(index, API_FAILED)
            log_runtime(f"worker {os.getpid()}: the Runtime API failed, exiting: {e}")
            return 1
        if worker.stopping and shutdown_callbacks:
            from runtime import shutdown

            shutdown.callbacks.run_once()
        return 0

    close_pooled_connections()
    # Every worker writes to the parent's stdout, or to the log socket: whole
    # log records either way (runtime/logsink.py).
    streams.share_with_workers()
    return Supervisor(
        config.max_concurrency, run_worker, RuntimeAPIClient(config.base_url), config.json_logs
    ).run()


class Supervisor:
    """The parent, after init: keeps ``count`` workers running ``run_worker``."""

    def __init__(
        self,
        count: int,
        run_worker: Callable[[Slots, int], int],
        client: RuntimeAPIClient,
        json_logs: bool = False,
    ):
        self.count = count
        self.run_worker = run_worker
        self.client = client  # the parent's own, for the error of a dead worker's invoke
        self.json_logs = json_logs
        self.slots = Slots(count)
        self.workers: dict[int, int] = {}  # pid: slot index
        self.stopping = False
        self.failed = False
        self._idle_deaths = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # The workers' end of this pipe reads EOF when the parent is gone,
        # however it went: a worker then exits rather than serve on, orphaned.
        self._alive_r, self._alive_w = os.pipe()
        # Objects made at init move to a generation the collector never scans,
        # so a worker's full collection does not write to (and copy) all their
        # pages. (For the echo handler over 32 invokes it measured no different:
        # no full collection ran; it is for the long-lived worker.)
        gc.freeze()
        try:
            for index in range(self.count):
                self._start(index)
            while self.workers:
                pid, status = os.wait()  # retried after a signal (PEP 475)
                if pid in self.workers:  # not a child the handler's init left behind
                    self._ended(self.workers.pop(pid), pid, status)
        finally:
            self.client.close()
        return 1 if self.failed else 0

    def _start(self, index: int) -> None:
        self.slots.set_state(index, IDLE)
        # SIGTERM is held back across the fork: the new worker must not run
        # the parent's handler (and signal its siblings) before it has its own.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until Worker.run takes it
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            self._worker_process(index)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self.workers[pid] = index
        if self.stopping:  # SIGTERM came as it forked: the new worker did not get it
            _signal(pid, signal.SIGTERM)

    def _worker_process(self, index: int) -> NoReturn:
        status = 1
        try:
            os.close(self._alive_w)
            _exit_with_parent(self._alive_r)
            status = self.run_worker(self.slots, index)
        except SystemExit as e:  # the handler called sys.exit(); the loop reported it
            status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        except BaseException:
            with contextlib.suppress(Exception):
                log_runtime(f"worker {os.getpid()} failed:\n{traceback.format_exc()}")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            streams.end_partial_lines()  # every thread's, not only this one's
            os._exit(status)

    def _ended(self, index: int, pid: int, status: int) -> None:
        state, request_id = self.slots.read(index)
        how = _describe(status)
        if state == API_FAILED:
            if not self.stopping:
                log_runtime(f"worker {pid}: the Runtime API failed; stopping every worker")
                self.failed = True
                self._stop()
            return
        if state == HOLDING:
            self._idle_deaths = 0
            self._report_lost(request_id, pid, how)
        elif not self.stopping:
            self._idle_deaths += 1
        if self.stopping:
            return
        if self._idle_deaths > MAX_IDLE_DEATHS_PER_WORKER * self.count:
            log_runtime(f"worker {pid} {how} before taking an invoke, again; stopping")
            self.failed = True
            self._stop()
            return
        log_runtime(f"worker {pid} {how}; starting another")
        self._start(index)

    def _report_lost(self, request_id: str, pid: int, how: str) -> None:
        """The dead worker's invoke, reported as Lambda reports a runtime that
        exited mid-invoke; the API refuses it if the invoke was answered."""
        error = ErrorPayload(
            f"RequestId: {request_id} Error: Runtime exited with error: {how}",
            RUNTIME_EXIT_ERROR,
            request_id,
        )
        with contextlib.suppress(Exception):
            log_error(error, self.json_logs)
        try:
            self.client.post_error(request_id, error)
        except RuntimeAPIError as e:
            log_runtime(
                f"error for {request_id} (worker {pid}) not accepted: {e}", request_id=request_id
            )

    def _stop(self) -> None:
        self.stopping = True
        for pid in list(self.workers):
            _signal(pid, signal.SIGTERM)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log_runtime(
                f"SIGTERM: stopping {len(self.workers)} worker(s) after their invokes", logging.INFO
            )
        self._stop()


def close_pooled_connections() -> int:
    """Close the keep-alive connections urllib3 pools (boto3's, requests')
    opened during init, before any fork: a socket inherited by N workers
    would carry N interleaved conversations. Each worker then opens its own on
    first use. Returns how many pool managers were cleared."""
    urllib3 = sys.modules.get("urllib3")
    if urllib3 is None:
        return 0  # nothing imported it, so nothing pooled with it
    cleared = 0
    for candidate in gc.get_objects():
        if isinstance(candidate, urllib3.PoolManager):
            with contextlib.suppress(Exception):
                candidate.clear()
                cleared += 1
    return cleared


def _exit_with_parent(alive_r: int) -> None:
    def watch() -> None:
        with contextlib.suppress(OSError):
            os.read(alive_r, 1)  # EOF only once the parent is gone
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    """A wait status in the words Lambda uses for a runtime that exited."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name.removeprefix("SIG").lower()
        except ValueError:
            name = str(signum)
        return f"signal: {'killed' if name == 'kill' else name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
