"""PyInstaller run-time hook: botocore reads its models from one archive.

botocore's `data/` folder holds ~2,000 small files (a service model, its
endpoint rules, paginators, waiters, for each of ~450 services). Unpacked at
every cold start they were 93% of the files the loader creates in /tmp, and
creating them took 0.7-3 s on a disk /tmp (build/botocore_models.py, README
"Performance"). The build puts them in `botocore/data.zip` instead, one file,
and this hook lets botocore's own `Loader` read them there.

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
`botocore.loaders` (one stat of the archive): a function that never imports
botocore pays nothing else.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import IO, Any

LOADERS = "botocore.loaders"
ARCHIVE = os.path.join("botocore", "data.zip")  # relative to the bundle's root


class ModelArchive:
    """The members of a zip of botocore's data folder, seen as files and
    folders under ``root`` (the folder the archive stands in for)."""

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = os.path.normpath(root)
        self._zip: Any = None
        self._folders: dict[str, set[str]] = {}
        self.reads = 0  # members read: the build's check counts on it

    def _open(self) -> None:
        import zipfile  # already imported by botocore's own dependencies

        self._zip = zipfile.ZipFile(self.path)
        folders: dict[str, set[str]] = {"": set()}
        for name in self._zip.namelist():
            parent, _, child = name.rpartition("/")
            folders.setdefault(parent, set()).add(child)
            while parent:  # every folder on the way is listed by its own parent
                grand, _, child = parent.rpartition("/")
                if child in folders.setdefault(grand, set()):
                    break
                folders[grand].add(child)
                parent = grand
        self._folders = folders

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


def patch_loaders(loaders: ModuleType, archive_path: str) -> ModelArchive:
    """Point an imported ``botocore.loaders`` at the archive of its data folder."""
    root = loaders.Loader.BUILTIN_DATA_PATH
    archive = ModelArchive(archive_path, root)
    loaders.os = _OsView(archive)
    methods = loaders._JSON_OPEN_METHODS
    for extension, original in list(methods.items()):
        methods[extension] = _archive_opener(archive, original)
    return archive


class _LoaderWithPatch:
    """The import loader of botocore.loaders, patching the module once run."""

    def __init__(self, loader: Any, archive_path: str) -> None:
        self._loader = loader
        self._archive_path = archive_path

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        patch_loaders(module, self._archive_path)

    def __getattr__(self, attribute: str) -> Any:  # get_source, get_resource_reader, ...
        return getattr(self._loader, attribute)


class _PatchOnImport:
    """A meta path finder that sees botocore.loaders imported, once."""

    def __init__(self, archive_path: str) -> None:
        self._archive_path = archive_path

    def find_spec(self, name: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if name != LOADERS:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _LoaderWithPatch(spec.loader, self._archive_path)
                return spec
        return None


def serve_from_archive(archive_path: str) -> None:
    """Make botocore's Loader read its data folder from ``archive_path``."""
    loaders = sys.modules.get(LOADERS)
    if loaders is not None:
        patch_loaders(loaders, archive_path)
    else:
        sys.meta_path.insert(0, _PatchOnImport(archive_path))


def _install() -> None:
    archive = os.path.join(getattr(sys, "_MEIPASS", ""), ARCHIVE)
    if getattr(sys, "frozen", False) and os.path.isfile(archive):
        serve_from_archive(archive)


_install()
