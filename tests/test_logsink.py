"""runtime/logsink.py, in one process: what each mode writes, write by write
(recorded at ``write_all``), and the lock between processes. Eight workers
at once, end to end: tests/test_log_records.py."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from runtime import logsink
from runtime.logsink import MAX_PARTIAL_LINE, LogSink, SharedLock


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Each ``write_all`` a sink makes, as it makes it (and written, too)."""
    made: list[bytes] = []
    real = logsink.write_all

    def record(fd: int, data: bytes) -> None:
        made.append(bytes(data))
        real(fd, data)

    monkeypatch.setattr(logsink, "write_all", record)
    return made


def text(sink: LogSink) -> io.TextIOWrapper:
    return io.TextIOWrapper(sink, encoding="utf-8", errors="backslashreplace", write_through=True)


def lines_sink(fd: int) -> tuple[LogSink, io.TextIOWrapper]:
    sink = LogSink(fd)
    sink.write_lines(SharedLock(None))
    return sink, text(sink)


def read_all(r: int) -> bytes:
    os.set_blocking(r, False)
    data = b""
    while True:
        try:
            chunk = os.read(r, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_one_process_writes_each_write_through_at_once(pipe: tuple[int, int]) -> None:
    r, w = pipe
    out = text(LogSink(w))
    out.write("no newline")
    assert read_all(r) == b"no newline"  # at once, as before: not held for its newline
    print("a", "b", file=out)
    out.buffer.write(memoryview(b"bytes too\n"))
    assert read_all(r) == b"a b\nbytes too\n"


def test_lines_one_write_per_line_whatever_the_pieces(
    pipe: tuple[int, int], writes: list[bytes]
) -> None:
    r, w = pipe
    _, out = lines_sink(w)
    print("a", "b", "c", file=out)
    out.write("partial ")
    assert writes == [b"a b c\n"]  # the partial line is held
    out.write("ends\nnext ")
    out.write("line\n")
    assert writes == [b"a b c\n", b"partial ends\n", b"next line\n"]
    assert read_all(r) == b"a b c\npartial ends\nnext line\n"


def test_lines_a_flush_ends_the_partial_line_without_a_blank_one(
    pipe: tuple[int, int], writes: list[bytes]
) -> None:
    r, w = pipe
    _, out = lines_sink(w)
    print("progress", end="", flush=True, file=out)
    print("", file=out)  # the newline that would have ended it: not a blank line
    print("done", file=out)
    assert read_all(r) == b"progress\ndone\n"


def test_lines_any_one_write_is_one_line_however_large(
    pipe: tuple[int, int], writes: list[bytes]
) -> None:
    r, w = pipe
    _, out = lines_sink(w)
    big = "x" * (3 * MAX_PARTIAL_LINE)
    done = threading.Thread(target=lambda: print(big, file=out))
    done.start()
    received = b""
    while len(received) < len(big) + 1:
        received += os.read(r, 1 << 20)
    done.join()
    assert writes == [big.encode() + b"\n"]  # print's own "\n" not written again
    assert received == big.encode() + b"\n"


def test_lines_a_line_built_past_the_limit_is_written_then(
    pipe: tuple[int, int], writes: list[bytes]
) -> None:
    r, w = pipe
    _, out = lines_sink(w)
    piece = "y" * (MAX_PARTIAL_LINE // 4)
    done = threading.Thread(target=lambda: [out.write(piece) for _ in range(5)])
    done.start()
    received = b""
    while len(received) < MAX_PARTIAL_LINE + 1:
        received += os.read(r, 1 << 20)
    done.join()
    assert writes == [piece.encode() * 4 + b"\n"]
    assert received == piece.encode() * 4 + b"\n"


def test_lines_threads_keep_their_own_partial_lines(
    pipe: tuple[int, int], writes: list[bytes]
) -> None:
    r, w = pipe
    sink, out = lines_sink(w)
    step = [threading.Event() for _ in range(4)]

    def first() -> None:
        out.write("one: a ")
        step[0].set()
        step[1].wait()
        out.write("b\n")
        step[2].set()

    def second() -> None:
        step[0].wait()
        out.write("two: a ")
        step[1].set()
        step[2].wait()
        out.write("b\n")
        out.write("left open")
        step[3].set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writes == [b"one: a b\n", b"two: a b\n"]
    sink.end_partial_lines()  # at a worker's exit: every thread's
    assert read_all(r) == b"one: a b\ntwo: a b\nleft open\n"


def test_the_lock_is_held_between_processes_and_freed_when_its_holder_is_killed(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    lock_fd = logsink._lock_file()
    assert lock_fd is not None
    lock = SharedLock(lock_fd)
    child = os.fork()
    if child == 0:  # a worker that takes the lock and never lets go
        try:
            with lock.for_this_process(shared=True):
                os.write(w, b"held")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert os.read(r, 4) == b"held"
        with pytest.raises(OSError):  # another process cannot take it...
            fcntl.lockf(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        taken = threading.Event()

        def take() -> None:
            with lock:
                taken.set()

        taking = threading.Thread(target=take, daemon=True)
        taking.start()
        taking.join(5)
        assert taken.is_set(), "the lock of a killed process was not freed"  # ...until it dies
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        os.close(lock_fd)
