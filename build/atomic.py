"""Outputs replaced, never written through: every file the build leaves in DIST.

DIST may be a folder others write in too (a shared CI workspace, a team's build folder):
a link planted there as `function.zip`, pointing at ~/.bashrc or at another user's file,
would be followed by an ordinary open(). So each output is written in a private folder
made beside it (mkdtemp: mode 0700, on the same file system), synced, then renamed over
its name: whatever held the name, a link or an older file, is replaced whole, its target
untouched; a reader sees the old file or the new one, never half of one; a failed write
leaves the old file as it was and no temporary file behind.

    replace_file(path, data, mode)      write bytes or text as ``path``
    replacing(path, mode) as tmp        a fresh path for a tool to write (zipfile, staticx,
                                        objcopy), put in place as ``path`` when it is done
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from build.errors import BuildError

DATA_MODE = 0o644
PROGRAM_MODE = 0o755


@contextmanager
def replacing(path: Path, mode: int = DATA_MODE) -> Iterator[Path]:
    """A path in a private folder beside ``path``; once the block has written it, it
    becomes ``path`` (mode ``mode``, synced). Nothing changes if the block raises."""
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    written = folder / path.name
    try:
        yield written
        try:
            fd = os.open(written, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BuildError(f"{path}: nothing was written") from None
        try:
            os.fchmod(fd, mode)
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(written, path)
        _sync_folder(path.parent)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def replace_file(path: Path, data: bytes | str, mode: int = DATA_MODE) -> Path:
    with replacing(path, mode) as written:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(written, flags, 0o600), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return path


def _sync_folder(folder: Path) -> None:
    """The rename itself on disk; a file system that cannot sync a folder is left be."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
