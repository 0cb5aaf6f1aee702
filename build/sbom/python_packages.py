"""The frozen Python modules as components: each top-level package traced to the
distribution that installed it, by part of the function:

    runtime             the runtime's dependencies (pyproject.toml) and theirs
    provided-sdk        boto3 and its dependencies as Lambda's runtime has them, added
                        because the function imports boto3 and its requirements do not
                        bring it (build/provided_sdk.py, requirements/provided-sdk.txt)
    requirements        what the function's requirements file brought
    build-environment   the rest of the build environment the handler's imports reached

then CPython (the standard library, lib-dynload) and this project's own modules.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import subprocess
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import tomllib
from cyclonedx.model import Property
from cyclonedx.model.component import Component, ComponentType
from packageurl import PackageURL

from build.paths import ROOT
from build.provided_sdk import provided_in
from build.sbom.contents import Contents
from build.sbom.project import FIRST_PARTY, PROPERTY, project_version

# PyInstaller's own modules in every PYZ: its bootstrap, not a package anyone installed.
PYINSTALLER_MODULES = {"base_library", "pyimod01_archive", "pyimod02_importers", "pyimod03_ctypes"}


def python_components(
    contents: Contents, env_python: Path | None, requirement_tops: Collection[str]
) -> Iterator[Component]:

    installed = distributions(site_paths(env_python) if env_python else sys.path)
    runtime = runtime_distributions()
    provided = provided_distributions(env_python)
    stdlib = set(sys.stdlib_module_names)
    by_dist: dict[tuple[str, str, str], set[str]] = {}
    first_party = set()
    for top in sorted(frozen_top_levels(contents)):
        if top in FIRST_PARTY or top not in installed:
            if top not in stdlib:
                first_party.add(top)
            continue
        dist = installed[top]
        part = part_of(dist, top, runtime, requirement_tops, provided)
        key = (dist.metadata["Name"], dist.version, part)
        by_dist.setdefault(key, set()).add(top)
    for (name, version, part), modules in sorted(by_dist.items()):
        yield Component(
            name=name,
            version=version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name}@{version}",
            purl=PackageURL("pypi", name=name.lower().replace("_", "-"), version=version),
            properties=[
                Property(name=f"{PROPERTY}part", value=part),
                Property(name=f"{PROPERTY}modules", value=", ".join(sorted(modules))),
            ],
        )
    yield cpython_component(contents)
    if first_party:
        yield Component(
            name="staticlambda",
            version=project_version(),
            type=ComponentType.LIBRARY,
            bom_ref="first-party",
            description="first-party: the staticlambda runtime and the function's own modules",
            properties=[Property(name=f"{PROPERTY}modules", value=", ".join(sorted(first_party)))],
        )


def cpython_component(contents: Contents) -> Component:
    """The build's interpreter: what scanners match CPython's advisories against."""
    version = platform.python_version()
    dynload = sorted(e.rsplit("/", 1)[-1] for e in contents.extensions if "lib-dynload" in e)
    return Component(
        name="python",
        version=version,
        type=ComponentType.FRAMEWORK,
        bom_ref=f"cpython@{version}",
        description=f"CPython {version}: interpreter, standard library, lib-dynload",
        cpe=f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*",
        purl=PackageURL("generic", name="cpython", version=version),
        properties=[Property(name=f"{PROPERTY}files", value=", ".join(dynload))],
    )


def frozen_top_levels(contents: Contents) -> set[str]:
    """The top-level packages the bootstrap holds: in the PYZ, as extension modules
    (lib-dynload's are CPython's), or as a package's data files."""
    tops = {top_level_of(m) for m in contents.modules}
    tops |= {top_level_of(e) for e in contents.extensions if "/lib-dynload/" not in f"/{e}"}
    tops |= {top_level_of(d) for d in contents.data_files if "/" in d}
    return tops - PYINSTALLER_MODULES


def part_of(
    dist: importlib.metadata.Distribution,
    top: str,
    runtime: set[str],
    requirement_tops: Collection[str],
    provided: Collection[str] = (),
) -> str:
    """The part of the function that brought this package: its `staticlambda:part`."""
    if canonical(dist.metadata["Name"]) in runtime:
        return "runtime"
    if canonical(dist.metadata["Name"]) in provided:
        return "provided-sdk"
    if top in requirement_tops:
        return "requirements"
    return "build-environment"


def top_level_of(archive_name: str) -> str:
    return archive_name.replace("/", ".").split(".")[0]


# --- who provides what ---------------------------------------------------------------


def distributions(paths: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """Top-level module name -> the distribution providing it, first path first."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=paths):
        for name in top_levels(dist):
            found.setdefault(name, dist)
    return found


def top_levels(dist: importlib.metadata.Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return set(text.split())
    # No top_level.txt (wheels built by hatchling, flit, ...): the first part of its files.
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__"):
            continue
        names.add(first.split(".")[0])
    return names


def provided_distributions(env_python: Path | None) -> set[str]:
    """What the build environment got from requirements/provided-sdk.txt (its marker)."""
    provided = provided_in(env_python.parent.parent) if env_python else None
    return {canonical(n) for n in provided.distributions} if provided else set()


def site_paths(python: Path) -> list[str]:
    """The import path of another interpreter (a build environment), as it reports it."""
    probe = subprocess.run(
        [str(python), "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [str(p) for p in json.loads(probe.stdout)]


def runtime_distributions() -> set[str]:
    """The runtime's dependencies (pyproject.toml) and theirs, as installed for the build.

    Anything else found in the build's environment got in because the handler's imports
    reached it there (boto3, for a function that imports it without requiring it).
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [requirement_name(r) for r in project.get("dependencies", [])]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return canonical(match.group(1)) if match else ""


def canonical(name: str) -> str:
    # PEP 503's normalized name: Requires-Dist may spell it otherwise than Name.
    return re.sub(r"[-_.]+", "-", name).lower()
