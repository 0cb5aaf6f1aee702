"""The user's SRC folder, read before anything is frozen: its Python sources
must compile, and its other files are the function's data.

PyInstaller silently leaves out a module that does not compile, so a syntax
error used to build cleanly and fail at init as `No module named 'app'`. Every
source is compiled here first, and the first error stops the build with the
message AWS's Python runtime would give (Runtime.UserCodeSyntaxError).

The function's files: Lambda's Python runtime unpacks the whole zip into
/var/task, its working directory, so a handler opens `prompt.txt`, reads
`Path(__file__).parent / "templates/x.txt"` or uses importlib.resources, and
code that lists its own `.py` files (Powertools' configure_openapi_merge) finds
them. The bundle keeps the same layout: every file of SRC goes into the
bundle's tree at its path relative to SRC, its `.py` sources too (as files,
imported from there: build/source_files.py), and the bootstrap makes that tree
its working directory (runtime/frozen.py). Left out always: hidden entries
(.git, .venv), __pycache__, virtual environments, node_modules. EXCLUDE
patterns (fnmatch, on the path relative to SRC or any of its folders) leave out
more, and ADD_DATA=path[:dest] adds files from elsewhere.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from build.errors import BuildError

SKIPPED_DIRS = ("__pycache__", "node_modules", "site-packages")
SOURCE_SUFFIX = ".py"
# Stray bytecode beside the sources is the developer's machine's, never shipped.
BYTECODE_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class DataFile:
    source: Path
    dest_dir: str  # the folder inside the bundle, relative to its root ("." for the root)

    @property
    def dest(self) -> str:
        return str(PurePosixPath(self.dest_dir) / self.source.name)

    @property
    def is_python_source(self) -> bool:
        return self.source.suffix == SOURCE_SUFFIX


def is_excluded(relative: str, patterns: Iterable[str]) -> bool:
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pattern) for pattern in patterns for p in prefixes)


def walk(src: Path, excludes: Iterable[str]) -> Iterator[tuple[Path, str]]:
    """(file, path relative to src) for every file the build may take."""
    patterns = list(excludes)
    for folder, dirs, files in os.walk(src):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not is_excluded((here / d).relative_to(src).as_posix(), patterns)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            relative = (here / name).relative_to(src).as_posix()
            if not is_excluded(relative, patterns):
                yield here / name, relative


def package_names(src: Path) -> set[str]:
    """Top-level module and package names SRC provides."""
    names = set()
    for entry in src.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    return names


def module_name(relative: str) -> str:
    name = relative.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def check_syntax(src: Path, handler_module: str, excludes: Iterable[str] = ()) -> int:
    """Compile every Python source of SRC; returns how many compiled."""
    count = 0
    for path, relative in walk(src, excludes):
        if path.suffix != ".py":
            continue
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as e:
            name = module_name(relative)
            raise BuildError(
                f"Runtime.UserCodeSyntaxError: Syntax error in module '{name}': {e.msg} "
                f"({path}, line {e.lineno})"
            ) from None
        except ValueError as e:  # null bytes in the source
            raise BuildError(f"Runtime.UserCodeSyntaxError: {path}: {e}") from None
        count += 1
    return count


def handler_data(src: Path, excludes: Iterable[str], skip: Iterable[Path] = ()) -> list[DataFile]:
    """The files of SRC the bundle's tree holds, data and `.py` sources, each
    at its path relative to SRC."""
    skipped = {p.resolve() for p in skip}
    return [
        DataFile(path, PurePosixPath(relative).parent.as_posix())
        for path, relative in walk(src, excludes)
        if path.suffix not in BYTECODE_SUFFIXES and path.resolve() not in skipped
    ]


def extra_data(spec: str) -> list[DataFile]:
    """ADD_DATA's `path[:dest]`: a file, or a folder's files, under dest."""
    source_text, colon, dest = spec.partition(":")
    source = Path(source_text).resolve()
    dest = dest.strip("/") if colon else ""
    if not source.exists():
        raise BuildError(f"ADD_DATA={spec}: {source} does not exist")
    if source.is_file():
        return [DataFile(source, dest or ".")]
    base = dest or source.name
    return [
        DataFile(path, (PurePosixPath(base) / PurePosixPath(relative).parent).as_posix())
        for path, relative in walk(source, ())
    ]


def summary(files: list[DataFile], limit: int = 6) -> str:
    data = [f for f in files if not f.is_python_source]
    sources = len(files) - len(data)
    also = f"; {sources} .py source{'s' if sources != 1 else ''} as files" if sources else ""
    if not data:
        return f"data files: none{also}"
    names = [f.dest.removeprefix("./") for f in data]
    shown = ", ".join(names[:limit]) + (
        f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    )
    return f"data files: {len(data)} ({shown}){also}"
