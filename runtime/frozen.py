"""Start-up work that only the frozen, static bootstrap needs.

The bootstrap brings its own glibc and OpenSSL (Debian's, from the build
machine), whose compiled-in CA path does not exist on Lambda's Amazon Linux,
nor in an empty root. And it unpacks itself into /tmp once (staticx's loader
unpacks the whole program, PyInstaller's onedir tree included); a bootstrap
killed by a timeout leaves that behind, and /tmp is small. Both are handled
here, before the runtime starts.

And the function's code folder: on AWS's Python runtime the working directory
and LAMBDA_TASK_ROOT are /var/task, where the function's files are, so code
opens `prompt.txt` or `os.path.join(os.environ["LAMBDA_TASK_ROOT"], ...)`. In
the bootstrap the function's files (SRC's tree, its `.py` sources too) are in
PyInstaller's tree, `sys._MEIPASS`, inside staticx's extraction in /tmp; the
bootstrap's own folder holds only `bootstrap`. So that tree becomes both,
before the handler's module is imported (it may open files at import).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import sys
from collections.abc import MutableMapping

from runtime.config import init_trace_enabled
from runtime.inittrace import InitTrace

# Where CA bundles live: Amazon Linux (Lambda's own OS) first, then Debian and
# friends. When none exists, the bundle frozen into the binary (certifi's) is used.
SYSTEM_CA_BUNDLES = (
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
)

# Extraction directories, as staticx names them. PyInstaller's onedir program
# unpacks nothing: its _MEIPASS is the `_internal/` inside staticx's directory.
EXTRACTION_PREFIXES = ("staticx-",)
# A bootstrap holds an exclusive lock on this file in each of its extraction
# directories for as long as it lives; the kernel drops the lock when the
# process dies, however it dies. A free lock is proof the owner is gone, as the
# mark only ever appears already locked (_mark_alive).
ALIVE_LOCK = ".staticlambda-alive"


def configure_ca_bundle(environ: MutableMapping[str, str]) -> None:
    """Point OpenSSL (and so ssl.create_default_context, httpx, urllib) at a CA
    bundle that exists, unless the user chose one."""
    if environ.get("SSL_CERT_FILE") or environ.get("SSL_CERT_DIR"):
        return
    for path in SYSTEM_CA_BUNDLES:
        if os.path.isfile(path):
            environ["SSL_CERT_FILE"] = path
            return
    try:
        import certifi
    except ImportError:  # a handler's build without certifi: nothing better to offer
        return
    environ["SSL_CERT_FILE"] = certifi.where()


def own_extraction_dirs(environ: MutableMapping[str, str]) -> set[str]:
    own = set()
    bundle = environ.get("STATICX_BUNDLE_DIR")
    if bundle:
        own.add(os.path.realpath(bundle))
    return own


def hold_extraction_locks(environ: MutableMapping[str, str]) -> list[int]:
    """Mark our extraction directories as alive; keep the returned fds open.

    A directory that is not ours (a link, another user's) or a lock path that is
    not a regular file of ours (a FIFO, a link someone planted) is left unmarked:
    it is then simply never swept, and the start is never held up.
    """
    fds = []
    for directory in own_extraction_dirs(environ):
        try:
            dir_fd = _open_own_directory(directory)
        except OSError:
            continue
        try:
            fds.append(_mark_alive(dir_fd))
        except OSError:
            continue  # unmarked, it is simply never swept
        finally:
            os.close(dir_fd)
    return fds


def _mark_alive(dir_fd: int) -> int:
    """The mark of the directory ``dir_fd``, locked by us, as an open fd.

    A sweep removes a directory whose mark it can lock, so the mark must never
    be seen unlocked while we live: made and opened with O_CREAT then locked, a
    sweep between the two took it for a dead bootstrap's (and one that held it
    for its look made our lock fail, leaving the mark free for the next sweep).
    So the mark is made under a name no sweep reads, locked there (no one else
    has it open: never contended), and only then linked in under its own name.
    A mark already there (a worker of ours was first) is locked if it is free.
    """
    private = f"{ALIVE_LOCK}.{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(private, flags, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            os.link(
                private, ALIVE_LOCK, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False
            )
        finally:
            os.unlink(private, dir_fd=dir_fd)
    except FileExistsError:
        os.close(fd)
        return _lock_existing_mark(dir_fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def _lock_existing_mark(dir_fd: int) -> int:
    fd = _open_own_lock(dir_fd, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def sweep_stale_extractions(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the extraction directories of bootstraps that were killed.

    $TMPDIR is shared with whoever else runs on the machine (other users in CI,
    on a server, on a laptop), so each entry is taken as it is, never followed:
    only a real directory (not a link to one), directly in $TMPDIR, on its file
    system, owned by us, whose mark is a regular file of ours whose lock is free,
    is removed, and removed through a handle on $TMPDIR (``rmtree(dir_fd=)``
    refuses links at every level). A directory still being unpacked, another
    program's or another user's has no such mark and is left alone; a FIFO
    planted as the mark cannot block us (it is opened non-blocking, then refused).
    Returns the paths removed.
    """
    tmp = environ.get("TMPDIR") or "/tmp"
    try:
        tmp_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    removed = []
    try:
        own = _identities(own_extraction_dirs(environ))
        tmp_dev = os.fstat(tmp_fd).st_dev
        with os.scandir(tmp_fd) as listing:
            names = [e.name for e in listing if e.name.startswith(EXTRACTION_PREFIXES)]
        for name in names:
            dir_fd = _stale_extraction(tmp_fd, tmp_dev, name)
            if dir_fd is None:
                continue
            try:
                st = os.fstat(dir_fd)
                if (st.st_dev, st.st_ino) in own:
                    continue
                _remove(tmp_fd, name, dir_fd)
            finally:
                os.close(dir_fd)
            removed.append(os.path.join(tmp, name))
    finally:
        os.close(tmp_fd)
    return removed


def _identities(paths: set[str]) -> set[tuple[int, int]]:
    """st_dev, st_ino of each directory, whatever path leads to it."""
    found = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def _stale_extraction(tmp_fd: int, tmp_dev: int, name: str) -> int | None:
    """A handle on ``name`` if it is our directory, marked, and its bootstrap
    gone; the caller closes it."""
    try:
        st = os.stat(name, dir_fd=tmp_fd, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_dev != tmp_dev:
        return None  # a link, a file, another user's, or a mount point: not ours
    try:
        dir_fd = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tmp_fd
        )
    except OSError:
        return None
    try:
        if not os.path.samestat(st, os.fstat(dir_fd)):
            raise PermissionError(f"{name} was replaced since it was looked at")
        lock = _open_own_lock(dir_fd, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails: its bootstrap is alive
        finally:
            os.close(lock)
    except OSError:
        os.close(dir_fd)
        return None  # not marked, the mark not ours, or alive: leave it
    return dir_fd


def _remove(tmp_fd: int, name: str, dir_fd: int) -> None:
    """Empty the directory through the handle that was checked, then remove
    its (now empty) entry: were ``name`` swapped for another directory in the
    meantime (possible in a $TMPDIR without the sticky bit), only an empty one
    could go. ``rmtree(dir_fd=)`` never follows a link, at any depth."""
    for child in os.listdir(dir_fd):
        with contextlib.suppress(OSError):
            st = os.stat(child, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(child, dir_fd=dir_fd, ignore_errors=True)
            else:
                os.unlink(child, dir_fd=dir_fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=tmp_fd)


def _open_own_directory(path: str) -> int:
    """A handle on ``path``, a real directory (not a link) owned by us."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{path} is not ours")
    return fd


def _open_own_lock(dir_fd: int, flags: int) -> int:
    """The mark in the directory ``dir_fd``, if it is a regular file owned by us.

    No-follow (a link is refused, not followed out of the directory) and
    non-blocking (a FIFO would otherwise hold up the start until someone writes
    to it); what it turns out to be is checked on the handle, not the path.
    """
    fd = os.open(
        ALIVE_LOCK,
        flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
        0o600,
        dir_fd=dir_fd,
    )
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{ALIVE_LOCK} is not a regular file of ours")
    return fd


def enter_code_folder(environ: MutableMapping[str, str]) -> str | None:
    """Make the folder of the function's files the working directory and
    LAMBDA_TASK_ROOT, as /var/task is on AWS's Python runtime; returns it.

    Lambda sets LAMBDA_TASK_ROOT to the bootstrap's folder (/var/task), which
    holds nothing but the bootstrap: the handler is told where its code is.
    """
    folder = getattr(sys, "_MEIPASS", None)
    if not isinstance(folder, str):
        return None  # not frozen: `python -m runtime` keeps the caller's
    with contextlib.suppress(OSError):  # gone or unreadable: the handler will say
        os.chdir(folder)
    environ["LAMBDA_TASK_ROOT"] = folder
    return folder


def run(handler_name: str) -> int:
    """The frozen bootstrap's main: its handler is the one it was built with."""
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(
            f"bootstrap: a Lambda runtime with the handler {handler_name} built in.\n"
            "Lambda runs it as the function's bootstrap; locally, run it under the "
            "Runtime Interface Emulator (make invoke). It reads AWS_LAMBDA_RUNTIME_API; "
            "_HANDLER is ignored."
        )
        return 0
    trace = InitTrace(init_trace_enabled(os.environ))
    trace.mark("bootstrap: CA bundle, sweep of old extractions")
    alive = hold_extraction_locks(os.environ)  # held until the process ends
    configure_ca_bundle(os.environ)
    sweep_stale_extractions(os.environ)
    enter_code_folder(os.environ)
    trace.mark("imports: the runtime, httpx")
    from runtime.__main__ import main

    try:
        return main([handler_name], init_trace=trace)
    finally:
        for fd in alive:
            os.close(fd)
