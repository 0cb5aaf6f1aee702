"""The CycloneDX 1.6 document: the bootstrap as its main component, every component it
holds as that one's dependency, written as dist/bootstrap.cdx.json beside the bootstrap."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6

from build.atomic import replace_file
from build.package import file_sha256
from build.sbom.contents import Contents, read_contents
from build.sbom.libraries import library_components
from build.sbom.loaders import loader_components
from build.sbom.project import PROPERTY, project_version
from build.sbom.python_packages import python_components

SBOM_NAME = "bootstrap.cdx.json"


def write_sbom(
    bootstrap: Path, env_python: Path | None = None, requirement_tops: Collection[str] = ()
) -> Path:
    """Write DIST/bootstrap.cdx.json for ``bootstrap``; print its line of the build summary.

    ``env_python``: the Python of the function's build environment (build/buildenv.py),
    whose packages are what PyInstaller froze; ``requirement_tops``: the top-level
    packages the function's requirements brought there (the rest are the build pins).
    """

    contents = read_contents(bootstrap)
    bom = make_bom(bootstrap, contents, env_python, requirement_tops)
    path = bootstrap.with_name(SBOM_NAME)
    replace_file(path, JsonV1Dot6(bom).output_as_string(indent=2) + "\n")
    print(f"{path}: CycloneDX SBOM, {len(bom.components)} components: {summary(bom)}")
    return path


def make_bom(
    bootstrap: Path,
    contents: Contents,
    env_python: Path | None,
    requirement_tops: Collection[str],
) -> Bom:

    digest = file_sha256(bootstrap)
    handler_file = bootstrap.with_name("bootstrap.handler")
    handler = handler_file.read_text().strip() if handler_file.is_file() else None
    main = Component(
        name="bootstrap",
        type=ComponentType.APPLICATION,
        version=project_version(),
        bom_ref="bootstrap",
        description="AWS Lambda bootstrap: Python, its runtime and handler, one static file",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        properties=[Property(name=f"{PROPERTY}handler", value=handler)] if handler else [],
    )
    components = [
        *python_components(contents, env_python, requirement_tops),
        *library_components(contents),
        *loader_components(),
    ]
    bom = Bom(
        components=components,
        # The same bootstrap always gets the same serial number.
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:sha256:{digest}"),
        metadata=BomMetaData(component=main, timestamp=build_time()),
    )
    bom.register_dependency(main, components)
    return bom


def summary(bom: Bom) -> str:
    """Name and version of each component, with the upstream release of glibc and OpenSSL."""
    words = []
    for component in sorted(bom.components, key=lambda c: c.name):
        upstream = [p.value for p in component.properties if p.name == f"{PROPERTY}upstream"]
        words.append(
            f"{component.name} {component.version or ''}".strip()
            + (f" ({upstream[0]})" if upstream else "")
        )
    return ", ".join(words)


def build_time() -> datetime:
    # SOURCE_DATE_EPOCH (reproducible-builds.org): the same input, the same SBOM.
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(tz=timezone.utc).replace(microsecond=0)
