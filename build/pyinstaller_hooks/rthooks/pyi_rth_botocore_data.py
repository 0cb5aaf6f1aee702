"""PyInstaller run-time hook: botocore reads its models from one archive.

botocore's `data/` folder holds ~2,000 small files (a service model, its
endpoint rules, paginators, waiters, for each of ~450 services). Unpacked at
every cold start they were 93% of the files the loader creates in /tmp, and
creating them took 0.7-3 s on a disk /tmp (build/botocore_models.py, README
"Performance"). The build puts them in one zip instead: an ELF section of
the static bootstrap, which this hook reads in place (nothing of it is
unpacked or written to /tmp), and `botocore/data.zip` in the program's
tree for the dynamic program; this hook lets botocore's own `Loader` read it.

How: `botocore.loaders` asks the file system only through `os.listdir`,
`os.path.isdir/isfile/exists` and the open functions of `_JSON_OPEN_METHODS`
(`open`, `gzip.open`). Once that module is imported, its `os` is replaced by a
view that answers those calls from the archive for paths inside botocore's
own data folder (`Loader.BUILTIN_DATA_PATH`) and passes every other path to the
real `os`, and its open functions read members of the archive. botocore's
logic is untouched: it finds services, API versions, `.sdk-extras` and
`.json.gz` models as before; `~/.aws/models` and `AWS_DATA_PATH` still work
from disk. The archive is opened on first use (creating a client).

The hook runs before the handler's imports and only registers a finder for
`botocore.loaders`: a function that never imports
botocore pays nothing else (a read of the bootstrap's section headers).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import IO, Any

LOADERS = "botocore.loaders"
ARCHIVE = os.path.join("botocore", "data.zip")  # relative to the bundle's root
# The ELF section of the static bootstrap that holds the same archive
# (build/static.py adds it, as staticx keeps its own archive in a section).
SECTION = b".staticlambda.botocore"


class Location:
    """Where the archive is: ``size`` bytes at ``offset`` of the file at
    ``path`` (a section of the bootstrap), or the whole file (size None)."""

    def __init__(self, path: str, offset: int = 0, size: int | None = None) -> None:
        self.path, self.offset, self.size = path, offset, size

    def open(self) -> IO[bytes]:
        if self.size is None:
            return open(self.path, "rb")
        return io.BufferedReader(_Window(self.path, self.offset, self.size))


class _Window(io.RawIOBase):
    """A read-only file of ``size`` bytes at ``offset`` of another: what
    zipfile reads the section through, without copying it anywhere."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._offset, self._size, self._position = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + position)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = max(0, min(len(buffer), self._size - self._position))
        data = os.pread(self._fd, wanted, self._offset + self._position)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def elf_section(path: str, name: bytes) -> tuple[int, int] | None:
    """(offset, size) of section ``name`` of a 64-bit little-endian ELF file
    (Lambda's x86_64 and arm64), or None."""
    import struct

    with open(path, "rb") as f:
        header = f.read(64)
        if header[:6] != b"\x7fELF\x02\x01":
            return None
        table_offset = struct.unpack_from("<Q", header, 0x28)[0]
        entry_size, count, names_index = struct.unpack_from("<HHH", header, 0x3A)
        f.seek(table_offset)
        table = f.read(entry_size * count)
        # A section header: name (I), type (I), flags, address, offset, size (Q)...
        names_offset, names_size = struct.unpack_from("<QQ", table, names_index * entry_size + 24)
        f.seek(names_offset)
        names = f.read(names_size)
        for index in range(count):
            start = struct.unpack_from("<I", table, index * entry_size)[0]
            if names[start : names.index(b"\0", start)] == name:
                offset, size = struct.unpack_from("<QQ", table, index * entry_size + 24)
                return int(offset), int(size)
    return None


class ModelArchive:
    """The members of a zip of botocore's data folder, seen as files and
    folders under ``root`` (the folder the archive stands in for)."""

    def __init__(self, location: Location, root: str) -> None:
        self.location = location
        self.root = os.path.normpath(root)
        self._zip: Any = None
        self._folders: dict[str, set[str]] = {}
        self.reads = 0  # members read: the build's check counts on it

    def _open(self) -> None:
        import zipfile  # boto3's own imports have loaded it already: no cost

        archive = zipfile.ZipFile(self.location.open())
        folders: dict[str, set[str]] = {"": set()}
        for name in archive.namelist():
            parent, _, child = name.rpartition("/")
            folders.setdefault(parent, set()).add(child)
            while parent:  # every folder on the way is listed by its own parent
                grand, _, child = parent.rpartition("/")
                if child in folders.setdefault(grand, set()):
                    break
                folders[grand].add(child)
                parent = grand
        # The listing first: a thread that sees the archive open sees it whole
        # (two threads making the first clients may both open it; no harm).
        self._folders = folders
        self._zip = archive

    def member(self, path: str) -> str | None:
        """``path``'s name in the archive ('' for the root), or None when
        ``path`` is outside the folder the archive stands in for."""
        path = os.path.normpath(path)
        if path == self.root:
            return ""
        if path.startswith(self.root + os.sep):
            return path[len(self.root) + 1 :].replace(os.sep, "/")
        return None

    def folders(self) -> dict[str, set[str]]:
        if self._zip is None:
            self._open()
        return self._folders

    def is_folder(self, name: str) -> bool:
        return name in self.folders()

    def is_file(self, name: str) -> bool:
        parent, _, child = name.rpartition("/")
        return child in self.folders().get(parent, ()) and name not in self.folders()

    def listdir(self, name: str) -> list[str]:
        children = self.folders().get(name)
        if children is None:
            if self.is_file(name):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return sorted(children)

    def read(self, name: str) -> bytes:
        if not self.is_file(name):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        data: bytes = self._zip.read(name)
        self.reads += 1
        return data


class _PathView:
    """`os.path` for botocore.loaders: archive-aware isdir/isfile/exists."""

    def __init__(self, archive: ModelArchive) -> None:
        self._archive = archive

    def isdir(self, path: str) -> bool:
        name = self._archive.member(path)
        return os.path.isdir(path) if name is None else self._archive.is_folder(name)

    def isfile(self, path: str) -> bool:
        name = self._archive.member(path)
        return os.path.isfile(path) if name is None else self._archive.is_file(name)

    def exists(self, path: str) -> bool:
        return self.isdir(path) or self.isfile(path)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(os.path, attribute)


class _OsView:
    """`os` for botocore.loaders: archive-aware listdir and os.path."""

    def __init__(self, archive: ModelArchive) -> None:
        self._archive = archive
        self.path = _PathView(archive)

    def listdir(self, path: str) -> list[str]:
        name = self._archive.member(path)
        return os.listdir(path) if name is None else self._archive.listdir(name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(os, attribute)


def _archive_opener(archive: ModelArchive, original: Callable[..., Any]) -> Callable[..., Any]:
    """An open function like ``original`` (`open` or `gzip.open`) that reads
    members of the archive for paths it holds."""

    def open_model(path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> IO[bytes]:
        name = archive.member(path)
        if name is None:
            opened: IO[bytes] = original(path, mode, *args, **kwargs)
            return opened
        content = io.BytesIO(archive.read(name))
        if original is open:
            return content
        wrapped: IO[bytes] = original(content, mode)  # gzip.open takes a file object too
        return wrapped

    return open_model


def patch_loaders(loaders: ModuleType, location: Location) -> ModelArchive:
    """Point an imported ``botocore.loaders`` at the archive of its data folder."""
    root = loaders.Loader.BUILTIN_DATA_PATH
    archive = ModelArchive(location, root)
    setattr(loaders, "os", _OsView(archive))  # noqa: B010 (the module's global)
    methods = loaders._JSON_OPEN_METHODS
    for extension, original in list(methods.items()):
        methods[extension] = _archive_opener(archive, original)
    return archive


class _LoaderWithPatch:
    """The import loader of botocore.loaders, patching the module once run."""

    def __init__(self, loader: Any, location: Location) -> None:
        self._loader = loader
        self._location = location

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        patch_loaders(module, self._location)

    def __getattr__(self, attribute: str) -> Any:  # get_source, get_resource_reader, ...
        return getattr(self._loader, attribute)


class _PatchOnImport:
    """A meta path finder that sees botocore.loaders imported, once."""

    def __init__(self, location: Location) -> None:
        self._location = location

    def find_spec(self, name: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if name != LOADERS:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _LoaderWithPatch(spec.loader, self._location)
                return spec
        return None


def serve_from_archive(location: Location) -> None:
    """Make botocore's Loader read its data folder from the archive."""
    loaders = sys.modules.get(LOADERS)
    if loaders is not None:
        patch_loaders(loaders, location)
    else:
        sys.meta_path.insert(0, _PatchOnImport(location))


def find_archive(environ: Mapping[str, str], bundle: str) -> Location | None:
    """Where the models are: a section of the static bootstrap itself (the
    file staticx's loader names in STATICX_PROG_PATH), read in place, so
    that a cold start neither unpacks nor writes them; else the file in the
    program's tree (the dynamic program, before staticx)."""
    program = environ.get("STATICX_PROG_PATH")
    if program:
        try:
            section = elf_section(program, SECTION)
        except (OSError, ValueError, IndexError):  # struct.error is a ValueError
            section = None
        if section is not None:
            return Location(os.path.abspath(program), *section)
    in_tree = os.path.join(bundle, ARCHIVE)
    return Location(in_tree) if os.path.isfile(in_tree) else None


def _install() -> None:
    if getattr(sys, "frozen", False):
        archive = find_archive(os.environ, getattr(sys, "_MEIPASS", ""))
        if archive is not None:
            serve_from_archive(archive)


_install()
