"""The `.dist-info` metadata of every distribution the bundle holds: run from
build/bootstrap.spec, after the Analysis and the prune.

PyInstaller ships a distribution's metadata only when a hook asks for it
(`copy_metadata`), so `importlib.metadata.version("x")` raised
PackageNotFoundError for most bundled packages (a connector then logs a warning
and reports version 0.0.0), and their entry points were gone. Here every
distribution with a module, extension or data file in the bundle (the
function's requirements and the runtime's own httpx, ...) gets its metadata
folder in the tree's root, which is on `sys.path`, as site-packages holds it:
`version()`, `metadata()`, `requires()`, `entry_points()`, `files()` and
`packages_distributions()` answer as in a normal install. Only the files they
read ship; RECORD among them: `files()` and, for wheels without top_level.txt
(hatchling's: httpx, pydantic), `packages_distributions()` read it.

A distribution whose modules the prune left out gets none; neither does
PyInstaller, whose start-up modules are in every bundle but are not a package
the function installed.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Iterator
from typing import Any

from build.package_data import canonical

METADATA_SUFFIXES = (".dist-info", ".egg-info")
# What importlib.metadata reads (wheels' and eggs'). Not WHEEL, INSTALLER,
# direct_url.json, licenses/ or sboms/: each file is unpacked into /tmp again at
# every cold start (realfunc's 25 distributions: 74 files, 0.9 MB, not 158, 1.2 MB).
READ_BY_IMPORTLIB = {
    "METADATA",
    "PKG-INFO",
    "RECORD",
    "entry_points.txt",
    "top_level.txt",
    "requires.txt",
    "installed-files.txt",
    "SOURCES.txt",
}
# Its start-up modules (pyimod0*) are in every PYZ; the SBOM lists it as the loader.
NOT_SHIPPED = {"pyinstaller", "pyinstaller-hooks-contrib"}


def metadata_files(dist: importlib.metadata.Distribution) -> Iterator[tuple[str, str]]:
    """(destination in the tree, source) of the files of ``dist``'s metadata folder."""
    for file in dist.files or []:
        if (
            len(file.parts) == 2
            and file.parts[0].endswith(METADATA_SUFFIXES)
            and file.name in READ_BY_IMPORTLIB
        ):
            source = str(dist.locate_file(file))
            if os.path.isfile(source):
                yield "/".join(file.parts), source


def owners(dists: Iterable[importlib.metadata.Distribution]) -> dict[str, Any]:
    """Every installed file (real path) -> the distribution that installed it."""
    found: dict[str, Any] = {}
    for dist in dists:
        for file in dist.files or []:
            found.setdefault(os.path.realpath(str(dist.locate_file(file))), dist)
    return found


def bundled_paths(analysis: Any) -> Iterator[str]:
    """The source files of what the bundle holds: modules, binaries, data."""
    for _, path, _ in analysis.pure:
        if path and os.path.isabs(path):
            yield path
    for entries in (analysis.binaries, analysis.datas):
        for _, source, _ in entries:
            if source:
                yield source


def package_metadata(analysis: Any) -> list[str]:
    """Adds the metadata of every bundled distribution; returns their names."""
    by_file = owners(importlib.metadata.distributions())
    bundled: dict[str, Any] = {}
    for path in bundled_paths(analysis):
        dist = by_file.get(os.path.realpath(path))
        if dist is not None:
            bundled.setdefault(canonical(dist.metadata["Name"] or ""), dist)
    have = {dest.replace(os.sep, "/") for dest, _, _ in analysis.datas}
    shipped = []
    for name, dist in sorted(bundled.items()):
        if name in NOT_SHIPPED or not name:
            continue
        files = [(dest, source) for dest, source in metadata_files(dist) if dest not in have]
        analysis.datas.extend((dest, source, "DATA") for dest, source in files)
        shipped.append(f"{dist.metadata['Name']} {dist.version}")
    return shipped
