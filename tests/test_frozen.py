"""runtime/frozen.py in-process: the CA bundle choice, and the sweep of killed
bootstraps' extraction directories in a $TMPDIR that others share.

The attacks are planted as a second user (nobody, through setpriv) in a
throwaway $TMPDIR, as they would be on a shared CI runner or server, and the
sweep runs as root, as a bootstrap started by root would: what is not ours
survives, and the start does not hang.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import ROOT

from runtime import frozen
from runtime.frozen import ALIVE_LOCK, configure_ca_bundle, hold_extraction_locks
from runtime.frozen import sweep_stale_extractions as sweep

IS_ROOT = os.geteuid() == 0
NOT_ROOT_REASON = "needs root to plant files as a second user (CI runs as root)"
NOBODY = 65534
HANG_LIMIT_S = 10.0


# --- the CA bundle ------------------------------------------------------------


def test_a_user_s_ssl_cert_file_is_kept(tmp_path: Path) -> None:
    mine = str(tmp_path / "my-ca.pem")
    environ = {"SSL_CERT_FILE": mine}
    configure_ca_bundle(environ)
    assert environ == {"SSL_CERT_FILE": mine}


def test_a_user_s_ssl_cert_dir_is_kept_and_no_file_added(tmp_path: Path) -> None:
    environ = {"SSL_CERT_DIR": str(tmp_path)}
    configure_ca_bundle(environ)
    assert environ == {"SSL_CERT_DIR": str(tmp_path)}


def test_without_a_user_s_choice_the_system_bundle_is_used() -> None:
    environ: dict[str, str] = {}
    configure_ca_bundle(environ)
    present = [p for p in frozen.SYSTEM_CA_BUNDLES if os.path.isfile(p)]
    if present:
        expected = present[0]
    else:  # no system bundle on this machine: certifi's
        import certifi

        expected = certifi.where()
    assert environ == {"SSL_CERT_FILE": expected}


# --- the sweep: a shared $TMPDIR ------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A throwaway $TMPDIR that anyone may write in, sticky, like /tmp.

    Made directly under /tmp (not in pytest's tmp_path, whose parents only
    root may enter) so that the second user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="h3-shared-tmp-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(script: str, *args: str) -> None:
    """Run a shell script as the second user."""
    subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "sh",
            "-euc",
            script,
            "sh",
            *args,
        ],
        check=True,
    )


def marked(directory: Path) -> Path:
    """An extraction directory as a killed bootstrap leaves it: marked, lock free."""
    directory.mkdir()
    (directory / ALIVE_LOCK).touch()
    (directory / "libpython3.11.so").write_bytes(b"unpacked")
    return directory


def victims(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def finishes(run: Callable[[], object], unblock: Callable[[], None]) -> bool:
    """Whether ``run`` returns within HANG_LIMIT_S; if not, ``unblock`` frees it
    (so that no thread is left stuck in the test process)."""
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_LIMIT_S)
    if thread.is_alive():
        unblock()
        thread.join(HANG_LIMIT_S)
        return False
    return True


def open_fifo_for_writing(fifo: Path) -> None:
    """Releases an open(O_RDONLY) blocked on ``fifo``."""
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)


def test_stale_extraction_of_ours_is_removed_and_foreign_ones_kept(shared_tmp: Path) -> None:
    stale = marked(shared_tmp / "staticx-111")
    unmarked = shared_tmp / "staticx-unpacking"  # still being unpacked: no mark yet
    unmarked.mkdir()
    other = shared_tmp / "_MEI-other-program"
    other.mkdir()
    (other / "data").write_bytes(b"keep")
    assert sweep({"TMPDIR": str(shared_tmp)}) == [str(stale)]
    assert sorted(p.name for p in shared_tmp.iterdir()) == [
        "_MEI-other-program",
        "staticx-unpacking",
    ]


def test_our_own_extraction_is_never_removed(shared_tmp: Path) -> None:
    mine = marked(shared_tmp / "staticx-mine")
    assert sweep({"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)}) == []
    assert mine.is_dir()


def test_two_live_bootstraps_sharing_tmp_keep_each_other_s_files(shared_tmp: Path) -> None:
    # Another bootstrap, alive in its own process, holds its directory's lock.
    theirs = marked(shared_tmp / "staticx-theirs")
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from runtime.frozen import hold_extraction_locks\n"
            "fds = hold_extraction_locks(os.environ)\n"
            "print(len(fds), flush=True)\n"
            "sys.stdin.read()\n",
        ],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(theirs)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "1\n"
        mine = marked(shared_tmp / "staticx-mine")
        stale = marked(shared_tmp / "staticx-killed")
        environ = {"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)}
        held = hold_extraction_locks(environ)
        try:
            assert sweep(environ) == [str(stale)]
        finally:
            for fd in held:
                os.close(fd)
        assert victims(theirs) == {ALIVE_LOCK: b"", "libpython3.11.so": b"unpacked"}
        assert mine.is_dir()
    finally:
        other.communicate("")
    # Once it has ended, its directory is stale like any other.
    assert sorted(sweep({"TMPDIR": str(shared_tmp)})) == [str(mine), str(theirs)]


def test_a_directory_swapped_in_after_the_checks_is_not_emptied(
    shared_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a $TMPDIR without the sticky bit, another user may rename our stale
    # directory away and put one of theirs under its name between the checks
    # and the removal: only what was checked is emptied.
    marked(shared_tmp / "staticx-swap")
    checked = frozen._stale_extraction

    def then_swapped(tmp_fd: int, tmp_dev: int, name: str) -> int | None:
        found = checked(tmp_fd, tmp_dev, name)
        if found is not None:
            (shared_tmp / name).rename(shared_tmp / "moved-away")
            (shared_tmp / name).mkdir()
            (shared_tmp / name / "someone-else-s").write_bytes(b"keep")
        return found

    monkeypatch.setattr(frozen, "_stale_extraction", then_swapped)
    sweep({"TMPDIR": str(shared_tmp)})
    assert victims(shared_tmp / "staticx-swap") == {"someone-else-s": b"keep"}
    assert victims(shared_tmp / "moved-away") == {}  # the one checked, emptied


def test_a_fifo_as_our_own_mark_neither_hangs_nor_is_taken_for_a_lock(shared_tmp: Path) -> None:
    directory = shared_tmp / "staticx-fifo"
    directory.mkdir()
    fifo = directory / ALIVE_LOCK
    os.mkfifo(fifo)
    result: list[list[str]] = []
    done = finishes(
        lambda: result.append(sweep({"TMPDIR": str(shared_tmp)})),
        lambda: open_fifo_for_writing(fifo),
    )
    assert done, "the sweep hung on a FIFO"
    assert result == [[]]
    assert directory.is_dir()


def test_a_link_as_our_own_mark_is_not_followed(shared_tmp: Path, tmp_path: Path) -> None:
    outside = marked(tmp_path / "outside")
    directory = shared_tmp / "staticx-linked-mark"
    directory.mkdir()
    (directory / ALIVE_LOCK).symlink_to(outside / ALIVE_LOCK)
    assert sweep({"TMPDIR": str(shared_tmp)}) == []
    assert directory.is_dir() and outside.is_dir()


def test_links_to_tmp_and_outside_are_never_followed_even_when_ours(
    shared_tmp: Path, tmp_path: Path
) -> None:
    (shared_tmp / ALIVE_LOCK).touch()
    (shared_tmp / "keep").write_bytes(b"tmp's own file")
    outside = marked(tmp_path / "outside")
    (shared_tmp / "staticx-to-tmp").symlink_to(shared_tmp)
    (shared_tmp / "staticx-to-outside").symlink_to(outside)
    assert sweep({"TMPDIR": str(shared_tmp)}) == []
    assert (shared_tmp / "keep").read_bytes() == b"tmp's own file"
    assert victims(outside) == {ALIVE_LOCK: b"", "libpython3.11.so": b"unpacked"}


# --- the sweep: planted by a second user ----------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_a_link_to_tmp_planted_by_another_user_deletes_nothing(shared_tmp: Path) -> None:
    root_only = shared_tmp / "root-only"
    root_only.mkdir(mode=0o700)
    (root_only / "secret").write_bytes(b"root's")
    mine = marked(shared_tmp / "staticx-mine")
    as_nobody('touch "$1/.staticlambda-alive"; ln -s "$1" "$1/staticx-pwn"', str(shared_tmp))
    environ = {"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)}
    assert sweep(environ) == []
    assert victims(root_only) == {"secret": b"root's"}
    assert victims(mine) == {ALIVE_LOCK: b"", "libpython3.11.so": b"unpacked"}
    assert (shared_tmp / "staticx-pwn").is_symlink()


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_a_link_outside_tmp_planted_by_another_user_deletes_nothing(
    shared_tmp: Path, tmp_path: Path
) -> None:
    # A directory of root's elsewhere that carries a free mark (a killed
    # bootstrap's, under another TMPDIR): only ever swept from its own TMPDIR.
    outside = marked(tmp_path / "elsewhere")
    as_nobody('ln -s "$2" "$1/staticx-pwn"', str(shared_tmp), str(outside))
    assert sweep({"TMPDIR": str(shared_tmp)}) == []
    assert victims(outside) == {ALIVE_LOCK: b"", "libpython3.11.so": b"unpacked"}


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_another_user_s_directory_is_never_removed_even_when_marked(shared_tmp: Path) -> None:
    as_nobody(
        'mkdir "$1/staticx-nobody";'
        ' touch "$1/staticx-nobody/.staticlambda-alive" "$1/staticx-nobody/theirs"',
        str(shared_tmp),
    )
    assert sweep({"TMPDIR": str(shared_tmp)}) == []
    assert victims(shared_tmp / "staticx-nobody") == {ALIVE_LOCK: b"", "theirs": b""}


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_a_fifo_planted_by_another_user_does_not_hang_the_start(shared_tmp: Path) -> None:
    as_nobody('mkdir "$1/staticx-x"; mkfifo "$1/staticx-x/.staticlambda-alive"', str(shared_tmp))
    fifo = shared_tmp / "staticx-x" / ALIVE_LOCK
    result: list[list[str]] = []
    environ = {"TMPDIR": str(shared_tmp)}
    done = finishes(lambda: result.append(sweep(environ)), lambda: open_fifo_for_writing(fifo))
    assert done, "the sweep hung on another user's FIFO"
    assert result == [[]]
    assert fifo.exists()


# --- the locks a bootstrap holds --------------------------------------------------


def test_hold_extraction_locks_marks_our_directories(shared_tmp: Path) -> None:
    mine = shared_tmp / "staticx-mine"
    mine.mkdir()
    fds = hold_extraction_locks({"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)})
    try:
        assert len(fds) == 1
        assert (mine / ALIVE_LOCK).is_file()
    finally:
        for fd in fds:
            os.close(fd)


def test_hold_extraction_locks_on_a_planted_fifo_does_not_hang(shared_tmp: Path) -> None:
    mine = shared_tmp / "staticx-mine"
    mine.mkdir()
    fifo = mine / ALIVE_LOCK
    os.mkfifo(fifo)
    held: list[list[int]] = []
    environ = {"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)}

    def release() -> None:  # an open(O_WRONLY) blocked on a FIFO waits for a reader
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        held.append([fd])

    done = finishes(lambda: held.append(hold_extraction_locks(environ)), release)
    for fds in held:
        for fd in fds:
            os.close(fd)
    assert done, "hold_extraction_locks hung on a FIFO"
    assert held == [[]]


def test_hold_extraction_locks_does_not_follow_a_planted_link(
    shared_tmp: Path, tmp_path: Path
) -> None:
    mine = shared_tmp / "staticx-mine"
    mine.mkdir()
    target = tmp_path / "created-through-the-link"
    (mine / ALIVE_LOCK).symlink_to(target)
    fds = hold_extraction_locks({"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)})
    assert fds == []
    assert not target.exists()


# --- two bootstraps starting at once --------------------------------------------

# A bootstrap starting up, stopped by the test at its first flock() (where the
# scheduler may stop any process), then let go; it holds its locks until told to end.
STARTING = """
import fcntl, os, sys
from runtime.frozen import hold_extraction_locks
real_flock = fcntl.flock
def stopped_flock(fd, operation):
    fcntl.flock = real_flock
    print("locking", flush=True)
    sys.stdin.readline()
    return real_flock(fd, operation)
fcntl.flock = stopped_flock
fds = hold_extraction_locks(os.environ)
print(len(fds), flush=True)
sys.stdin.read()
"""


@contextmanager
def starting_bootstrap(shared_tmp: Path, directory: Path) -> Iterator[subprocess.Popen[str]]:
    """Another bootstrap of ours, its extraction unpacked, stopped at its first flock()."""
    process = subprocess.Popen(
        [sys.executable, "-c", STARTING],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "locking\n"
        yield process
    finally:
        process.kill()
        process.wait()


def unpacked(directory: Path) -> Path:
    """An extraction directory as staticx's loader leaves it: unpacked, not yet marked."""
    directory.mkdir()
    (directory / "libpython3.11.so").write_bytes(b"unpacked")
    return directory


def let_go(process: subprocess.Popen[str]) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("\n")
    process.stdin.flush()
    return process.stdout.readline()


def test_a_sweep_while_another_bootstrap_marks_its_extraction_keeps_it(shared_tmp: Path) -> None:
    # Bootstrap A has made its mark but not yet locked it when bootstrap B
    # sweeps: a mark must never be seen unlocked while its bootstrap lives.
    theirs = unpacked(shared_tmp / "staticx-starting")
    mine = unpacked(shared_tmp / "staticx-mine")
    environ = {"TMPDIR": str(shared_tmp), "STATICX_BUNDLE_DIR": str(mine)}
    with starting_bootstrap(shared_tmp, theirs) as other:
        assert sweep(environ) == []
        assert victims(theirs)["libpython3.11.so"] == b"unpacked"
        assert let_go(other) == "1\n"
        assert sweep(environ) == []  # marked and locked now
        assert (theirs / ALIVE_LOCK).is_file()
    assert sweep(environ) == [str(theirs)]  # ended: stale like any other


def test_a_sweep_s_look_at_a_mark_never_makes_a_starting_bootstrap_give_it_up(
    shared_tmp: Path,
) -> None:
    # B's sweep holds A's lock for the moment it checks it; if A tries to take
    # it just then, A must not be left with a mark it does not hold.
    theirs = unpacked(shared_tmp / "staticx-starting")
    environ = {"TMPDIR": str(shared_tmp)}
    with starting_bootstrap(shared_tmp, theirs) as other:
        checking = None
        if (theirs / ALIVE_LOCK).exists():  # what B's check does: lock, look, let go
            checking = os.open(theirs / ALIVE_LOCK, os.O_RDONLY)
            fcntl.flock(checking, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            let_go(other)
        finally:
            if checking is not None:
                os.close(checking)
        assert sweep(environ) == []
        assert victims(theirs) == {ALIVE_LOCK: b"", "libpython3.11.so": b"unpacked"}
    assert sweep(environ) == [str(theirs)]
