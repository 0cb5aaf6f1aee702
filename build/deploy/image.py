"""The image: dist/image.oci.tar as `make image` wrote it, read for what a registry and Lambda
call it by (its one manifest's digest) and the architecture it runs on."""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from build.aws_errors import DeployError

DEFAULT_IMAGE = Path("dist/image.oci.tar")
# OCI's architecture names, as Lambda names them.
LAMBDA_ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}


@dataclass(frozen=True)
class Image:
    path: Path
    digest: str  # sha256:<hex> of its manifest: what a registry and Lambda call it by
    architecture: str  # as Lambda names it
    size: int


def read_image(path: Path) -> Image:
    """The archive's one manifest (index.json), checked against image.oci.tar.sha256."""
    if not path.is_file():
        raise DeployError(f"{path} not found: run `make build` and `make image` first")
    data = path.read_bytes()
    recorded = path.with_name(path.name + ".sha256")
    if recorded.is_file() and recorded.read_text().split()[:1] != [
        hashlib.sha256(data).hexdigest()
    ]:
        raise DeployError(f"{path} is not the image recorded in {recorded.name}: run `make image`")
    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("index.json")
            index = json.loads(member.read() if member else b"")
    except (tarfile.TarError, KeyError, ValueError):
        raise DeployError(f"{path} is not an OCI archive: run `make image` again") from None
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise DeployError(f"{path} holds {len(manifests)} images; `make image` writes one")
    (manifest,) = manifests
    oci_arch = manifest.get("platform", {}).get("architecture")
    if oci_arch not in LAMBDA_ARCHITECTURES:
        raise DeployError(f"{path} is for {oci_arch}; Lambda runs amd64 (x86_64) and arm64")
    return Image(path, manifest["digest"], LAMBDA_ARCHITECTURES[oci_arch], len(data))
