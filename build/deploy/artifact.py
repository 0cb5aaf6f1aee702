"""The artifact: function.zip as it will be uploaded, checked against what Lambda
accepts and runs (size quotas, a 64-bit ELF `bootstrap`, executable, the sha256 recorded)."""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from build.aws_errors import DeployError
from build.elf import ARCH_ALIASES as ARCH_ALIASES  # re-exported: the CLI's --arch
from build.elf import ELF_MACHINES, ElfError, NotElf64, header_machine
from build.package import code_sha256 as code_sha256  # re-exported: deploy.code_sha256

DEFAULT_ZIP = Path("dist/function.zip")
HANDLER_FILE = "bootstrap.handler"  # written by the build beside function.zip

# Lambda's quotas for a .zip package sent in the request itself (not through S3).
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    path: Path
    zip_bytes: bytes = field(repr=False)
    code_sha256: str
    architecture: str
    handler: str | None  # None when the build left no bootstrap.handler
    bootstrap_sha256: str = ""  # hex sha256 of the zip's bootstrap, as the build record has it

    @property
    def size(self) -> int:
        return len(self.zip_bytes)


def human_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def elf_architecture(header: bytes) -> str:
    """The Lambda architecture of an ELF executable, from its first 20 bytes."""
    try:
        machine = header_machine(header)
    except NotElf64:
        raise DeployError(
            "bootstrap is not a 64-bit little-endian ELF; Lambda runs only those"
        ) from None
    except ElfError:
        raise DeployError("bootstrap in the zip is not an ELF executable") from None
    if machine not in ELF_MACHINES:
        raise DeployError(
            f"bootstrap is built for ELF machine {machine:#x}; Lambda runs x86_64 (0x3e) "
            "and arm64 (0xb7)"
        )
    return ELF_MACHINES[machine]


def read_handler(zip_path: Path) -> str | None:
    path = zip_path.parent / HANDLER_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def check_recorded_sha256(zip_path: Path, data: bytes) -> None:
    """The zip must still be the one the build hashed into function.zip.sha256, if it did."""
    recorded_file = zip_path.with_name(zip_path.name + ".sha256")
    try:
        recorded = recorded_file.read_text(encoding="utf-8").split()[:1]
    except FileNotFoundError:
        return
    hex_digest = recorded[0] if recorded and re.fullmatch(r"[0-9a-f]{64}", recorded[0]) else None
    if hex_digest is not None and hex_digest != hashlib.sha256(data).hexdigest():
        raise DeployError(
            f"{zip_path} is not the zip the build recorded in {recorded_file.name}: "
            "run `make zip` again"
        )


def read_artifact(zip_path: Path) -> Artifact:
    """The zip as it will be uploaded, checked against what Lambda accepts and runs."""
    if not zip_path.is_file():
        raise DeployError(f"{zip_path} not found: run `make zip` first")
    size = zip_path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise DeployError(
            f"{zip_path} is {size / 2**20:.1f} MiB; Lambda accepts at most 50 MiB uploaded "
            "directly (larger packages go through S3)"
        )
    # The bytes hashed are the bytes uploaded: one read, no window for the file to change.
    data = zip_path.read_bytes()
    try:
        with zipfile.ZipFile(zip_path) as z:
            unzipped = sum(info.file_size for info in z.infolist())
            try:
                info = z.getinfo("bootstrap")
            except KeyError:
                raise DeployError(f"{zip_path} has no `bootstrap` at its root") from None
            with z.open(info) as f:
                bootstrap = f.read()
            architecture = elf_architecture(bootstrap[:64])
    except zipfile.BadZipFile:
        raise DeployError(f"{zip_path} is not a zip file: run `make zip` again") from None
    if unzipped > MAX_UNZIPPED_BYTES:
        raise DeployError(
            f"{zip_path} unzips to {unzipped / 2**20:.1f} MiB; Lambda's limit is 250 MiB"
        )
    check_recorded_sha256(zip_path, data)
    mode = info.external_attr >> 16
    # Zips made on Unix carry the mode; without the x bits Lambda cannot exec bootstrap.
    if info.create_system == 3 and mode and not mode & 0o111:
        raise DeployError(f"bootstrap in {zip_path} is not executable (mode {mode & 0o777:o})")
    return Artifact(
        zip_path,
        data,
        code_sha256(data),
        architecture,
        read_handler(zip_path),
        hashlib.sha256(bootstrap).hexdigest(),
    )
