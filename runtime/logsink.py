"""Where the process's stdout and stderr go: whole log records, whatever the
number of processes writing.

Lambda reads a runtime's output line by line, and a line is a log record (a
record over several lines keeps them together by writing its inner newlines as
``\\r``: runtime/logs.py). ``sys.stdout`` and ``sys.stderr`` are text streams over a
``LogSink`` each, the same two objects for the whole life of the process, so that
a handler a library bound to them at import (Powertools' Logger, ``basicConfig``)
writes through them too. How a sink writes:

- **One process** (the default, and Lambda Managed Instances with
  ``AWS_LAMBDA_MAX_CONCURRENCY`` unset or 1): each write goes to fd 1 (2) at once,
  whole (``os.write`` again after a partial write), byte for byte as before.
- **Workers sharing stdout** (runtime/workers.py, when there is no log socket):
  every worker writes to the same pipe, and a pipe keeps only writes of up to
  PIPE_BUF (4096) bytes whole; ``print()`` is several writes. So a sink writes
  *lines*: each thread's text is held until it ends a line, then the complete
  line(s) go out in one loop of ``os.write`` under a lock that every process
  holds in turn: a POSIX record lock (``fcntl.lockf``) on an anonymous file made
  before the fork. The kernel releases it when its holder dies, however it dies
  (a semaphore would stay taken by a worker the OOM killer took), so a dead
  worker never blocks the others. A partial line is written when its thread ends
  it, flushes (``print(..., flush=True)``, ``context.log``: the line then ends
  there), reaches ``MAX_PARTIAL_LINE``, or when the worker exits.
- **Workers with Managed Instances' log socket**
  (``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``): as AWS's Python runtime does,
  each worker connects to it twice and puts the connections in place of its fds
  1 and 2 (so that a subprocess or a C library writes there too). Each worker's
  stream is then its own and no other process can splice into it; the sink
  still writes lines, so that two threads of one worker do not splice either.
  awslambdaric 4.2.2 writes plain lines there, not telemetry frames (those are
  for ``_LAMBDA_TELEMETRY_LOG_FD``, which Managed Instances does not set), and so
  does this. The single-process runtime connects too, and writes as before.

What no sink can hold together: a subprocess's or a C library's own writes to
fd 1 or 2, which go to the fd without passing through ``sys.stdout``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import select
import socket
import tempfile
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer

# A line still open after this many bytes is written as a line of its own: the
# memory held per thread is bounded, and CloudWatch cuts events at 256 KB anyway.
# (Any one write is never cut: a single print of any size is one line.)
MAX_PARTIAL_LINE = 256 * 1024


class LogSink(io.RawIOBase):
    """The raw stream under ``sys.stdout`` (fd 1) or ``sys.stderr`` (fd 2)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.name = fd  # as io.FileIO names it
        self.mode = "wb"
        self._lines: _Lines | None = None  # None: write through (one process)

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Buffer) -> int:
        if type(data) is not bytes:  # TextIOWrapper writes bytes; sys.stdout.buffer, anything
            data = bytes(data)
        if self._lines is not None:
            self._lines.write(data)
        else:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            if written < len(data):
                write_all(self._fd, memoryview(data)[written:])
        return len(data)

    def flush(self) -> None:
        """Writing lines: the calling thread's partial line is written, ended."""
        if self._lines is not None:
            self._lines.end_partial(threading.get_ident())

    def write_lines(self, lock: SharedLock) -> None:
        self._lines = _Lines(self._fd, lock)

    def end_partial_lines(self) -> None:
        """Every thread's partial line written, ended (before a fork, at exit)."""
        if self._lines is not None:
            self._lines.end_partial(None)


class SharedLock:
    """Held around each write to a stream several processes share: a POSIX
    record lock on ``fd`` (per process, so also a thread lock), or only the
    thread lock when the stream is this process's own (``fd`` None)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._threads = threading.RLock()  # re-entered by a signal handler that logs
        self._depth = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0 and self._fd is not None:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def for_this_process(self, shared: bool) -> SharedLock:
        """A fresh lock for a forked child (no thread of the parent's holds
        it there), on the same file if the stream is ``shared``."""
        return SharedLock(self._fd if shared else None)


class _Lines:
    """A sink writing whole lines: each thread's partial line held until it ends."""

    def __init__(self, fd: int, lock: SharedLock) -> None:
        self._fd = fd
        self._lock = lock
        self._guard = threading.RLock()
        self._partial: dict[int, bytes] = {}  # thread ident: its open line
        self._ended: set[int] = set()  # threads whose line was ended for them

    def write(self, data: bytes) -> None:
        if not data:
            return  # print("") writes "" before its newline
        thread = threading.get_ident()
        with self._guard:
            if thread in self._ended:
                self._ended.discard(thread)
                if data.startswith(b"\n"):  # the newline that was written for it
                    data = data[1:]
            text = self._partial.pop(thread, b"") + data
            end = text.rfind(b"\n") + 1
            if end < len(text):
                if len(text) - end < MAX_PARTIAL_LINE:
                    self._partial[thread] = text[end:]
                    text = text[:end]
                else:
                    text += b"\n"
                    self._ended.add(thread)
            if text:
                with self._lock:
                    write_all(self._fd, text)

    def end_partial(self, thread: int | None) -> None:
        """``thread``'s partial line (all threads': None) written, with a newline."""
        with self._guard:
            threads = list(self._partial) if thread is None else [thread]
            for ident in threads:
                text = self._partial.pop(ident, b"")
                if text:
                    self._ended.add(ident)
                    with self._lock:
                        write_all(self._fd, text + b"\n")


def write_all(fd: int, data: Buffer) -> None:
    """``data`` written whole: a pipe or socket may take part of it per write
    (a signal, a non-blocking fd)."""
    view = memoryview(data).cast("B")
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]


# --- the process's two sinks --------------------------------------------------
# Process-wide, as the file descriptors they write to are: made once at start,
# switched to lines when workers are forked.


class StandardStreams:
    """The process's stdout and stderr sinks, and the lock their writers share."""

    def __init__(self) -> None:
        self.stdout = LogSink(1)
        self.stderr = LogSink(2)
        self._lock: SharedLock | None = None

    def text_streams(self) -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
        """``sys.stdout``, ``sys.stderr``: every write passed on at once."""
        return _text(self.stdout), _text(self.stderr)

    def share_with_workers(self) -> None:
        """In the parent, before the first fork: from now on, lines under a
        lock every process takes (the parent writes to the same stdout)."""
        self._lock = SharedLock(_lock_file())
        for sink in (self.stdout, self.stderr):
            sink.end_partial_lines()
            sink.write_lines(self._lock)

    def start_worker(self, log_socket: str | None) -> str | None:
        """In a worker, just forked: its own lock, and, given Managed Instances'
        log socket, its own connections in place of fds 1 and 2. Returns why
        the socket could not be used, if it could not."""
        failure = None
        own = False
        if log_socket:
            try:
                connect_log_socket(log_socket)
                own = True
            except OSError as e:
                failure = f"log socket {log_socket}: {e}; writing to stdout"
        lock = (self._lock or SharedLock(None)).for_this_process(shared=not own)
        for sink in (self.stdout, self.stderr):
            sink.write_lines(lock)  # a fresh one: what the parent held is not this process's
        return failure

    def end_partial_lines(self) -> None:
        for sink in (self.stdout, self.stderr):
            with contextlib.suppress(Exception):
                sink.end_partial_lines()


def connect_log_socket(path: str) -> None:
    """Managed Instances' log socket in place of fds 1 and 2, one connection
    each, as awslambdaric connects its workers."""
    for fd in (1, 2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(path)
            os.dup2(connection.fileno(), fd)


def _lock_file() -> int | None:
    """An anonymous file to lock: in memory, else in the temporary directory;
    None if neither can be made (lines are then written without the lock)."""
    with contextlib.suppress(OSError, AttributeError):
        return os.memfd_create("staticlambda-log-lock", os.MFD_CLOEXEC)
    with contextlib.suppress(OSError):
        fd, path = tempfile.mkstemp(prefix="staticlambda-log-lock-")
        os.unlink(path)
        return fd
    return None


def _text(sink: LogSink) -> io.TextIOWrapper:
    return io.TextIOWrapper(sink, encoding="utf-8", errors="backslashreplace", write_through=True)


streams = StandardStreams()
