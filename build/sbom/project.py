"""This project as its SBOM names it: its version, its own top-level packages, and the
namespace of the CycloneDX properties it adds (``staticlambda:part``, ``staticlambda:files``)."""

from __future__ import annotations

import tomllib

from build.paths import ROOT

# The runtime and the default handlers: first-party, whatever else the handler brings.
FIRST_PARTY = ("runtime", "handlers")
# Names outside CycloneDX's own property taxonomy carry their owner's namespace.
PROPERTY = "staticlambda:"


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
