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
id it takes into its slot of a small shared-memory table (``Slots``) as soon as
``/next``'s headers name it, before the event's body is read, and clears it
when the invoke has been answered; a worker that dies (``os._exit``, a
segfault, the OOM killer, even while a large event is read) leaves its id
there, and the parent, which reads a slot only once its worker is dead, posts
that invoke's error (Lambda's ``Runtime.ExitError``) before forking the
replacement. Deaths outside an invoke are counted over the last
IDLE_DEATH_WINDOW_S: past MAX_IDLE_DEATHS_PER_WORKER x N of them the fault is
the environment's, not an invoke's, and the parent stops (exit 1).

An answer the Runtime API refuses (410 ``InvokeTimeout`` for an invoke that
timed out while its code ran on, 400 ``InvalidRequestID`` for one the
platform aborted) costs that invoke, never the worker (runtime/loop.py); only
a Runtime API gone for good (``/next`` failing after its retries, or a post
unanswered) stops every worker, and the parent exits 1.

Shutdown, in order (Managed Instances: the platform aborts the invokes in
flight, sends SIGTERM to the process group, and SIGKILL about 600 ms later):

1. every worker, on SIGTERM, whatever it is doing (waiting on ``/next``, or
   in the middle of an aborted invoke's code), marks its slot idle, runs the
   shutdown callbacks (runtime/shutdown.py), if opted in, at once, in its own
   process, where the handler's state (its buffers, its connections) lives,
   and exits 0; a later SIGTERM (the group's and the parent's) is ignored;
2. the parent passes SIGTERM on (to each worker: it may have come to the
   parent alone), waits for the workers, kills any still running
   WORKERS_SHUTDOWN_S after the signal, and exits 0: the rest of the window
   is for its own exit and the bootstrap's loader, which removes its /tmp
   directory. The parent runs no callback: it never ran an invoke, and what
   it holds from init each worker holds too.

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
import time
import traceback
from collections import deque
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

# A slot: its state, then the request id and the invocation id, each as its
# length (2 bytes) and its bytes (Lambda's are at most 256 printable bytes;
# runtime/client.py refuses longer ones).
IDLE, HOLDING, API_FAILED = 0, 1, 2
MAX_REQUEST_ID = 256
ID_FIELD = 2 + MAX_REQUEST_ID
SLOT_SIZE = 1 + 2 * ID_FIELD

# Workers dying with no invoke held, more than this many per worker within
# IDLE_DEATH_WINDOW_S, are a fault of the environment (their start, memory, a
# thread of the handler's), not of one invoke: replacing them again would spin.
MAX_IDLE_DEATHS_PER_WORKER = 3
IDLE_DEATH_WINDOW_S = 60.0

# Managed Instances' shutdown: SIGKILL comes this long after SIGTERM (the
# emulator's runtime shutdown timeout). The workers have all of it but the
# last 100 ms for their callbacks; those are the parent's and the loader's exit.
SHUTDOWN_WINDOW_S = 0.6
WORKERS_SHUTDOWN_S = SHUTDOWN_WINDOW_S - 0.1


class Slots:
    """One slot per worker in anonymous shared memory (MAP_SHARED: the
    parent and every worker forked after it see the same bytes). A worker
    writes only its own slot; the parent reads it only once the worker is
    dead, so no write is ever seen half done."""

    def __init__(self, count: int):
        self._memory = mmap.mmap(-1, count * SLOT_SIZE)

    def hold(self, index: int, request_id: str, invocation_id: str | None = None) -> None:
        at = index * SLOT_SIZE
        self._write_id(at + 1, request_id)
        self._write_id(at + 1 + ID_FIELD, invocation_id or "")
        self._memory[at] = HOLDING

    def set_state(self, index: int, state: int) -> None:
        self._memory[index * SLOT_SIZE] = state

    def read(self, index: int) -> tuple[int, str, str | None]:
        """The slot's state, request id and invocation id (None when Lambda sent none)."""
        at = index * SLOT_SIZE
        invocation_id = self._read_id(at + 1 + ID_FIELD)
        return self._memory[at], self._read_id(at + 1), invocation_id or None

    def _write_id(self, at: int, value: str) -> None:
        data = value.encode()[:MAX_REQUEST_ID]
        self._memory[at + 2 : at + 2 + len(data)] = data
        self._memory[at : at + 2] = len(data).to_bytes(2, "little")

    def _read_id(self, at: int) -> str:
        length = int.from_bytes(self._memory[at : at + 2], "little")
        return self._memory[at + 2 : at + 2 + length].decode(errors="replace")


class Worker:
    """A worker's loop: ``/next`` on the invoke loop's own client, then its
    ``handle``, the request id in the worker's slot while it holds the invoke
    (from ``/next``'s headers on). SIGTERM ends it wherever it is."""

    def __init__(
        self, loop: InvokeLoop, slots: Slots, index: int, shutdown_callbacks: bool = False
    ):
        self.loop = loop
        self.slots = slots
        self.index = index
        self.shutdown_callbacks = shutdown_callbacks

    def run(self) -> NoReturn:
        """Serve invokes until SIGTERM; ``RuntimeAPIError`` if the API fails."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        index, slots = self.index, self.slots

        def holding(request_id: str, invocation_id: str | None) -> None:
            slots.hold(index, request_id, invocation_id)

        while True:
            invocation = self.loop.client.next_invocation(holding)
            try:
                self.loop.handle(invocation)
            finally:
                # Also after sys.exit() in the handler: the loop reported it.
                slots.set_state(index, IDLE)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> NoReturn:
        # Once: the signal comes to the group and from the parent.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Whatever invoke the worker runs, Lambda aborted it before its SIGTERM:
        # nothing to report, and no time to finish it. (When the parent stops
        # the workers itself, the API has failed, or the environment: the
        # runtime's exit fails the invokes in flight.)
        self.slots.set_state(self.index, IDLE)
        if self.shutdown_callbacks:
            from runtime import shutdown

            shutdown.callbacks.run_once()
        _flush_output()
        os._exit(0)


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
        try:
            Worker(loop, slots, index, shutdown_callbacks).run()
        except RuntimeAPIError as e:
            slots.set_state(index, API_FAILED)
            log_runtime(
                f"the Runtime API failed, stopping every worker: {e} (worker {os.getpid()})"
            )
        return 1

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
        self._idle_deaths: deque[float] = deque()  # when, over the last IDLE_DEATH_WINDOW_S
        self.clock = time.monotonic

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
            signal.setitimer(signal.ITIMER_REAL, 0)  # the shutdown window's, if armed
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
        state, request_id, invocation_id = self.slots.read(index)
        how = _describe(status)
        if state == API_FAILED:  # the worker said why, in one line
            if not self.stopping:
                self.failed = True
                self._stop()
            return
        if state == HOLDING:
            self._report_lost(request_id, invocation_id, pid, how)
        if self.stopping:
            return
        if state != HOLDING and self._too_many_idle_deaths():
            log_runtime(
                f"{len(self._idle_deaths)} workers died outside an invoke within "
                f"{IDLE_DEATH_WINDOW_S:g} s, the last {pid} ({how}): stopping every "
                "worker; their output above says why"
            )
            self.failed = True
            self._stop()
            return
        log_runtime(f"worker {pid} {how}; starting another")
        self._start(index)

    def _too_many_idle_deaths(self) -> bool:
        """Count one more death outside an invoke; whether the window holds too many."""
        now = self.clock()
        deaths = self._idle_deaths
        deaths.append(now)
        while deaths and deaths[0] < now - IDLE_DEATH_WINDOW_S:
            deaths.popleft()
        return len(deaths) > MAX_IDLE_DEATHS_PER_WORKER * self.count

    def _report_lost(self, request_id: str, invocation_id: str | None, pid: int, how: str) -> None:
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
            self.client.post_error(request_id, error, invocation_id=invocation_id)
        except RuntimeAPIError as e:
            log_runtime(
                f"error for {request_id} (worker {pid}) not accepted: {e}", request_id=request_id
            )

    def _stop(self) -> None:
        """SIGTERM to every worker, and SIGKILL to those still running
        WORKERS_SHUTDOWN_S later (their callbacks hang, or their code holds
        the signal off)."""
        if not self.stopping:
            signal.signal(signal.SIGALRM, self._on_shutdown_window_end)
            signal.setitimer(signal.ITIMER_REAL, WORKERS_SHUTDOWN_S)
        self.stopping = True
        for pid in list(self.workers):
            _signal(pid, signal.SIGTERM)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log_runtime(f"SIGTERM: stopping {len(self.workers)} worker(s) now", logging.INFO)
        self._stop()

    def _on_shutdown_window_end(self, signum: int, frame: FrameType | None) -> None:
        if self.workers:
            log_runtime(
                f"worker(s) {', '.join(map(str, self.workers))} still running "
                f"{WORKERS_SHUTDOWN_S * 1000:g} ms after SIGTERM: killed"
            )
        for pid in list(self.workers):
            _signal(pid, signal.SIGKILL)


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


def _flush_output() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()


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
