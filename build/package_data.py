"""Data files of the function's own dependencies, for those no PyInstaller hook
covers: run from build/bootstrap.spec, after the Analysis.

PyInstaller bundles a package's data files only when a hook asks for them
(pyinstaller-hooks-contrib has hooks for botocore, pydantic, jsonschema, ...).
aws_xray_sdk has none, and powertools' Tracer reads its
`sampling/local/sampling_rule.json` at init: without it the function died with
FileNotFoundError. So for each package of the function's requirements that
the bundle imports, and whose data no hook already brought, its data files
(not code, headers, type stubs or tests) are added.

Which packages come from the requirements (not from the build pins) is
computed in the build environment by `requirement_packages`, run as a script.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

# Never needed at run time, often large.
EXCLUDES = [
    "**/tests/**",
    "**/test/**",
    "**/*.pyi",
    "**/py.typed",
    "**/*.h",
    "**/*.c",
    "**/*.pxd",
    "**/*.pyx",
    "**/include/**",
    "**/__pycache__/**",
]


def is_imported(graph: Any, name: str) -> bool:
    node = graph.find_node(name)
    return node is not None and type(node).__name__ in ("Package", "NamespacePackage")


def package_data(analysis: Any, packages: list[str]) -> list[tuple[str, str]]:
    """Adds the data files; returns (package, destination) for each one added."""
    from PyInstaller.utils.hooks import collect_data_files  # type: ignore[import-untyped]

    have = {dest for dest, _, _ in analysis.datas}
    added = []
    for package in packages:
        if not is_imported(analysis.graph, package):
            continue
        if any(dest.startswith(package + os.sep) for dest in have):
            continue  # a hook collected this package's data already
        for source, dest_dir in collect_data_files(package, excludes=EXCLUDES):
            dest = os.path.join(dest_dir, os.path.basename(source))
            analysis.datas.append((dest, source, "DATA"))
            added.append((package, dest))
    return added


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_names(build_pins: str) -> set[str]:
    """Distribution names in requirements/build.txt (`name==version` lines)."""
    names = set()
    for line in build_pins.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(canonical(match.group(1)))
    return names | {"pip", "setuptools", "wheel"}


def requirement_packages(build_pins: str) -> list[str]:
    """Top-level packages installed here that the build pins did not bring."""
    from importlib.metadata import distributions

    skip = pinned_names(build_pins)
    tops: set[str] = set()
    for dist in distributions():
        if canonical(dist.metadata["Name"] or "") in skip:
            continue
        for file in dist.files or []:
            parts = file.parts
            if (
                len(parts) > 1
                and not parts[0].endswith((".dist-info", ".data", ".egg-info"))
                and parts[0].isidentifier()
            ):
                tops.add(parts[0])
    return sorted(tops)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(requirement_packages(f.read())))
