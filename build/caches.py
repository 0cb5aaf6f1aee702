"""Bounded caches: the build's work folders and its build environments.

Each build leaves PyInstaller's work folder in .cache/build/<slug> (one per
handler, SRC and requirements) and its environment in .cache/envs/<key> (one
per set of requirements, build pins and interpreter). Unbounded, about 25 builds
left 1.6 GB in the one and 1.5 GB in the other. Each build now prunes both:

    .cache/build   the last STATICLAMBDA_KEEP_BUILDS (default 3) work folders
    .cache/envs    the last STATICLAMBDA_KEEP_ENVS (default 5) environments, and
                   fewer while they hold more than STATICLAMBDA_ENVS_MAX_MB
                   (default 2000) together

"Last" is last used: a build touches what it uses (the work folder's mtime, the
environment's completion marker). What a build uses is never removed: it holds a
shared flock on the folder's lock file (<folder>.lock) until it ends, and
pruning removes only a folder whose lock it can take exclusively at once, so a
concurrent build's folder stays too. `make clean-cache` (python -m build.caches
clean) empties both, this machine's and the arm64 and Docker builders' (.cache/
arm64, .cache/docker-*), but for what a running build holds, and says what it
removed and how much.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from build.errors import BuildError
from build.paths import CACHE

DEFAULT_KEEP_BUILDS = 3
DEFAULT_KEEP_ENVS = 5
DEFAULT_ENVS_MAX_MB = 2000
ENV_USED = ".staticlambda-complete"  # build/buildenv.py's completion marker: touched on use

# Locks this process holds on what its build uses, released when it exits.
_held: dict[Path, IO[str]] = {}


@dataclass(frozen=True)
class Limits:
    keep_builds: int = DEFAULT_KEEP_BUILDS
    keep_envs: int = DEFAULT_KEEP_ENVS
    envs_max_bytes: int = DEFAULT_ENVS_MAX_MB * 1_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        def number(name: str, default: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit():
                raise BuildError(f"{name}={raw} is not a whole number (default {default})")
            return int(raw)

        return cls(
            number("STATICLAMBDA_KEEP_BUILDS", DEFAULT_KEEP_BUILDS),
            number("STATICLAMBDA_KEEP_ENVS", DEFAULT_KEEP_ENVS),
            number("STATICLAMBDA_ENVS_MAX_MB", DEFAULT_ENVS_MAX_MB) * 1_000_000,
        )


# --- locks -----------------------------------------------------------------------


def lock_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.lock"


def open_locked(path: Path, operation: int) -> IO[str] | None:
    """``path`` opened and flock'ed; None when LOCK_NB was asked and someone holds it.

    Pruning unlinks a lock file it holds: a process that opened the old file and
    waited would lock a file no one else sees, so it reopens until the lock it
    holds is on the file at ``path``."""
    while True:
        handle = open(path, "a")  # noqa: SIM115 - held past this function on purpose
        try:
            fcntl.flock(handle, operation)
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()


@contextmanager
def making(folder: Path) -> Iterator[None]:
    """Exclusive while ``folder`` is made (a second build of it waits for the first),
    then held (``hold``) by the same lock, shared, until this process ends."""
    if folder in _held:  # made earlier by this process, and held since
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    handle = open_locked(lock_path(folder), fcntl.LOCK_EX)
    assert handle is not None  # a blocking lock is always granted
    try:
        yield
    except BaseException:
        handle.close()
        raise
    fcntl.flock(handle, fcntl.LOCK_SH)
    _held[folder] = handle


def hold(folder: Path) -> None:
    """Mark ``folder`` in use until this process ends: pruning anywhere leaves it."""
    if folder in _held:
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    handle = open_locked(lock_path(folder), fcntl.LOCK_SH)
    assert handle is not None
    _held[folder] = handle


# --- pruning ---------------------------------------------------------------------


@dataclass(frozen=True)
class Removed:
    folder: Path
    size: int


def size_of(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            with suppress(OSError):  # gone meanwhile
                total += os.lstat(os.path.join(base, name)).st_size
    return total


def last_used(folder: Path, marker: str | None) -> float:
    stamp = folder / marker if marker else folder
    try:
        return stamp.stat().st_mtime
    except OSError:
        return 0.0  # half made, or by an older build: the first to go


def touch(folder: Path, marker: str | None = None) -> None:
    stamp = folder / marker if marker else folder
    if stamp.exists():
        os.utime(stamp)


def remove_unless_held(folder: Path) -> Removed | None:
    """Remove ``folder`` if no build holds it (a shared lock) or is making it."""
    handle = open_locked(lock_path(folder), fcntl.LOCK_EX | fcntl.LOCK_NB)
    if handle is None:
        return None
    try:
        size = size_of(folder)
        shutil.rmtree(folder, ignore_errors=True)
        lock_path(folder).unlink(missing_ok=True)
        return Removed(folder, size)
    finally:
        handle.close()


def folders(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()]


def prune(
    parent: Path, keep: int, max_bytes: int | None, marker: str | None, in_use: Path
) -> list[Removed]:
    """Keep the ``keep`` last used folders of ``parent`` (and, with ``max_bytes``, no more
    than fit in it, newest first), always ``in_use``; remove the rest that no one holds."""
    # The one in use first: it counts among those kept, whenever it was last used.
    ranked = sorted(
        folders(parent), key=lambda f: (f == in_use, last_used(f, marker)), reverse=True
    )
    kept, total, removed = 0, 0, []
    for folder in ranked:
        size = size_of(folder) if max_bytes is not None else 0
        if folder == in_use or (kept < keep and (max_bytes is None or total + size <= max_bytes)):
            kept += 1
            total += size
            continue
        gone = remove_unless_held(folder)
        if gone is not None:
            removed.append(gone)
    return removed


def report(what: str, removed: list[Removed], bound: str) -> None:
    if removed:
        size = sum(r.size for r in removed) / 1e6
        print(f"    cache: removed {len(removed)} {what} ({size:.0f} MB) beyond {bound}")


def use_workdir(workdir: Path, limits: Limits | None = None) -> None:
    """The build's PyInstaller work folder: held, touched, and the others pruned."""
    limits = limits or Limits.from_env(os.environ)
    hold(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    touch(workdir)
    removed = prune(workdir.parent, limits.keep_builds, None, None, workdir)
    report("build folders", removed, f"the last {limits.keep_builds} (STATICLAMBDA_KEEP_BUILDS)")


def use_env(env_root: Path, limits: Limits | None = None) -> None:
    """The build's environment (made and complete): held, touched, the others pruned."""
    limits = limits or Limits.from_env(os.environ)
    hold(env_root)
    touch(env_root, ENV_USED)
    removed = prune(env_root.parent, limits.keep_envs, limits.envs_max_bytes, ENV_USED, env_root)
    bound = (
        f"the last {limits.keep_envs} or {limits.envs_max_bytes / 1e6:.0f} MB "
        "(STATICLAMBDA_KEEP_ENVS, STATICLAMBDA_ENVS_MAX_MB)"
    )
    report("build environments", removed, bound)


# --- make clean-cache -------------------------------------------------------------


def cache_bases(cache: Path) -> list[Path]:
    """This machine's cache, and the arm64 build root's and Docker builders' inside it."""
    base = cache.parent if cache.name == "arm64" else cache
    return [base, base / "arm64", *sorted(base.glob("docker-*"))]


def clean(cache: Path = CACHE) -> tuple[list[Removed], list[Path]]:
    """Every build folder and environment no running build holds: (removed, held)."""
    removed: list[Removed] = []
    held: list[Path] = []
    for base in cache_bases(cache):
        for parent in (base / "build", base / "envs"):
            for folder in sorted(folders(parent)):
                gone = remove_unless_held(folder)
                if gone is None:
                    held.append(folder)
                else:
                    removed.append(gone)
            for stale in parent.glob("*.lock") if parent.is_dir() else []:
                if not stale.with_suffix("").exists():
                    remove_unless_held(stale.with_suffix(""))
    return removed, held


def main(argv: list[str]) -> int:
    if argv != ["clean"]:
        print(__doc__, file=sys.stderr)
        return 2
    removed, held = clean()
    size = sum(r.size for r in removed) / 1e6
    builds = sum(1 for r in removed if r.folder.parent.name == "build")
    envs = len(removed) - builds
    print(
        f"clean-cache: removed {builds} build folders and {envs} build environments "
        f"({size:.0f} MB) from {cache_bases(CACHE)[0]}"
    )
    for folder in held:
        print(f"clean-cache: kept {folder}: a running build holds it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
