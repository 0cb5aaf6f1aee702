"""`make image`: dist/bootstrap as a Lambda container image, an OCI archive with nothing else.

    layer       one tar holding one file, /bootstrap (mode 0755, owner 0, mtime 0), gzipped
                without a name or a time: the same bootstrap gives the same bytes
    config      ENTRYPOINT ["/bootstrap"], the architecture from its ELF header, no base
                image, no shell, no environment: Lambda sets what the runtime reads
    manifest    the config and the layer by sha256 digest (OCI image spec 1.0)
    archive     the OCI image layout (oci-layout, index.json, blobs/sha256/...) as one tar,
                entries in a fixed order with fixed metadata: `oci-archive:` to skopeo,
                podman and buildah

Written here rather than with buildah or umoci: both stamp the build's clock into the
config and history, and neither is needed to write five JSON and tar files. The static
bootstrap needs no library, so no base image: the image is the binary.

    python -m build.image [--dist dist] [--tag staticlambda:latest]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.atomic import replace_file
from build.command import exit_status
from build.elf import ElfError, header_machine
from build.errors import BuildError
from build.package import write_sha256_file

IMAGE_NAME = "image.oci.tar"
DEFAULT_TAG = "staticlambda:latest"
ENTRYPOINT = "/bootstrap"
# The OCI spec's names for what each blob is.
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
# The ELF e_machine of the two architectures Lambda runs, as OCI names them.
OCI_ARCHITECTURES = {0x3E: "amd64", 0xB7: "arm64"}
EPOCH = "1970-01-01T00:00:00Z"  # what a reproducible image says it was made at


def oci_architecture(bootstrap: Path) -> str:
    with open(bootstrap, "rb") as f:
        header = f.read(20)
    try:
        machine = header_machine(header)
    except ElfError:
        raise BuildError(
            f"{bootstrap} is not a 64-bit little-endian ELF: run `make build`"
        ) from None
    if machine not in OCI_ARCHITECTURES:
        raise BuildError(f"{bootstrap} is built for ELF machine {machine:#x}, not one Lambda runs")
    return OCI_ARCHITECTURES[machine]


def fixed_entry(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    """A tar entry with nothing of the build machine in it."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_bytes(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in entries:
            tar.addfile(fixed_entry(name, len(data), mode), io.BytesIO(data))
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Image:
    archive: bytes
    manifest_digest: str
    architecture: str


def make_image(bootstrap: Path, tag: str = DEFAULT_TAG) -> Image:
    """The OCI archive of an image holding ``bootstrap`` as /bootstrap, and nothing else."""
    data = bootstrap.read_bytes()
    architecture = oci_architecture(bootstrap)
    layer_tar = tar_bytes([(ENTRYPOINT.lstrip("/"), data, 0o755)])
    # mtime=0 and no file name: gzip's header then holds nothing of this build.
    layer = gzip.compress(layer_tar, compresslevel=9, mtime=0)
    config = canonical_json(
        {
            "architecture": architecture,
            "os": "linux",
            "created": EPOCH,
            "config": {"Entrypoint": [ENTRYPOINT]},
            "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
            "history": [{"created": EPOCH, "created_by": "staticlambda: make image"}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": digest(layer), "size": len(layer)}],
        }
    )
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": INDEX_TYPE,
            "manifests": [
                {
                    "mediaType": MANIFEST_TYPE,
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                    "platform": {"architecture": architecture, "os": "linux"},
                }
            ],
        }
    )
    blobs = sorted(
        (f"blobs/sha256/{digest(blob).split(':')[1]}", blob) for blob in (config, layer, manifest)
    )
    archive = tar_bytes(
        [
            ("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), 0o644),
            ("index.json", index, 0o644),
            *((name, blob, 0o644) for name, blob in blobs),
        ]
    )
    return Image(archive, digest(manifest), architecture)


def write_image(bootstrap: Path, output: Path, tag: str = DEFAULT_TAG) -> Image:
    if not bootstrap.is_file():
        raise BuildError(f"{bootstrap} does not exist: run `make build` first")
    image = make_image(bootstrap, tag)
    replace_file(output, image.archive)
    write_sha256_file(output)
    print(
        f"{output}: OCI image {tag}, {image.architecture}, {len(image.archive) / 1e6:.1f} MB, "
        f"ENTRYPOINT {ENTRYPOINT} only; manifest {image.manifest_digest}"
    )
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m build.image", description=__doc__)
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument(
        "--tag", default=DEFAULT_TAG, help=f"the image's name (default {DEFAULT_TAG})"
    )
    args = parser.parse_args(argv)
    return exit_status(
        "image", lambda: write_image(args.dist / "bootstrap", args.dist / IMAGE_NAME, args.tag)
    )


if __name__ == "__main__":
    sys.exit(main())
