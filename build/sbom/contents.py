"""What the static bootstrap holds, read back from the file itself, not from what was asked.

staticx's archive (the section .staticx.archive) holds the libraries staticx bundled and
either PyInstaller's onedir tree (``_internal/``, which build/static.py puts there) or a
onefile program whose own archive holds the libraries, extension modules and PYZ.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from build.errors import BuildError, ToolFailed
from build.static import ARCHIVE_SECTION as STATICX_SECTION
from build.static import dump_section

# The magic that ends a PyInstaller program (its CArchive's cookie).
PYINSTALLER_COOKIE = b"MEI\014\013\012\013\016"
ONEDIR_TREE = "_internal/"


@dataclass
class Contents:
    """What the static bootstrap holds: files by name, the frozen modules by name."""

    libraries: dict[str, bytes] = field(default_factory=dict)  # name -> bytes
    extensions: list[str] = field(default_factory=list)  # archive paths of .so modules
    modules: set[str] = field(default_factory=set)  # dotted names: the PYZ's, the tree's .py
    data_files: list[str] = field(default_factory=list)  # e.g. certifi/cacert.pem
    # The .dist-info folders' files (build/package_metadata.py): httpx-0.28.1.dist-info/METADATA
    metadata_files: list[str] = field(default_factory=list)
    python_version: int = 0  # 311, as PyInstaller's cookie stores it


def staticx_members(bootstrap: Path) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "archive.tar"
        try:
            dump_section(bootstrap, STATICX_SECTION, raw)
        except ToolFailed as e:
            raise BuildError(f"SBOM: no staticx archive in {bootstrap}: {e.stderr}") from None
        with tarfile.open(raw) as tar:
            return {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }


def read_contents(bootstrap: Path) -> Contents:
    from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

    contents = Contents()
    program = None
    for name, data in staticx_members(bootstrap).items():
        if name.startswith(ONEDIR_TREE):
            # PyInstaller's onedir tree (build/static.py puts it in staticx's archive).
            add_tree_file(contents, name[len(ONEDIR_TREE) :], data)
        elif PYINSTALLER_COOKIE in data[-4096:] or (program is None and PYINSTALLER_COOKIE in data):
            program = data
        else:
            contents.libraries[name] = data
    if program is None:
        raise BuildError(f"SBOM: no PyInstaller program inside {bootstrap}")
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(program)
        tmp.flush()
        archive = CArchiveReader(tmp.name)
        contents.python_version = python_version_of(program)
        for name, entry in archive.toc.items():
            typecode = entry[4]
            if typecode == "z":
                contents.modules |= set(archive.open_embedded_archive(name).toc)
            elif typecode in "be":
                if is_extension_module(name):
                    contents.extensions.append(name)
                else:
                    contents.libraries[name] = archive.extract(name)
            elif typecode == "x":
                contents.data_files.append(name)
    return contents


def add_tree_file(contents: Contents, name: str, data: bytes) -> None:
    """One file of the onedir tree, sorted as the onefile archive's typecodes sort them.

    The function's own modules are there as `.py` files (build/source_files.py),
    their bytecode beside them in `__pycache__/`, and every bundled distribution's
    metadata folder (build/package_metadata.py).
    """
    parts = name.split("/")
    if parts[0].endswith((".dist-info", ".egg-info")):
        contents.metadata_files.append(name)
    elif "__pycache__" in parts[:-1]:
        return  # the bytecode of a .py file beside it
    elif name.endswith(".py"):
        contents.modules.add(name.removesuffix(".py").removesuffix("/__init__").replace("/", "."))
    elif name.endswith(".so") or ".so." in name:
        if is_extension_module(name):
            contents.extensions.append(name)
        else:
            contents.libraries[name] = data
    else:
        contents.data_files.append(name)


def is_extension_module(name: str) -> bool:
    """A Python extension module (lib-dynload's, or a package's), not a shared library:
    libraries are named lib*.so at the top of the archive."""
    return "/lib-dynload/" in f"/{name}" or not re.search(r"^lib[^/]*\.so", name)


def python_version_of(program: bytes) -> int:
    at = program.rfind(PYINSTALLER_COOKIE)
    return int.from_bytes(program[at + 20 : at + 24], "big") if at >= 0 else 0
