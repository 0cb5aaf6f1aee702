"""PyInstaller's and staticx's bootloaders: code in every bootstrap that no Python module
names, so the SBOM lists them by the version of the tool that wrote them."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from cyclonedx.model import Property
from cyclonedx.model.component import Component, ComponentType
from packageurl import PackageURL

from build.sbom.project import PROPERTY


def loader_components() -> Iterable[Component]:

    for name, what in (
        ("pyinstaller", "PyInstaller's bootloader, which unpacks and starts Python"),
        ("staticx", "staticx's bootloader and libnssfix, which start the bundled libraries"),
    ):
        version = importlib.metadata.version(name)
        yield Component(
            name=name,
            version=version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name}@{version}",
            purl=PackageURL("pypi", name=name, version=version),
            description=what,
            properties=[Property(name=f"{PROPERTY}part", value="loader")],
        )
