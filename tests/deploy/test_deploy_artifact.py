"""build/deploy/artifact.py: function.zip read as Lambda will take it, alone (no AWS)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from deploy_support import (
    ARM64,
    X86_64,
    elf_header,
    make_zip,
    sha,
)

from build import deploy
from build.aws_errors import DeployError


def test_code_sha256_is_base64_of_sha256() -> None:
    assert deploy.code_sha256(b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


@pytest.mark.parametrize(("machine", "arch"), [(X86_64, "x86_64"), (ARM64, "arm64")])
def test_architecture_comes_from_elf_e_machine(tmp_path: Path, machine: int, arch: str) -> None:
    artifact = deploy.read_artifact(make_zip(tmp_path, machine))
    assert artifact.architecture == arch
    assert artifact.handler == "handlers.echo.handler"
    assert artifact.code_sha256 == sha(tmp_path / "function.zip")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"#!/bin/sh\n" + bytes(20), "not an ELF"),
        (elf_header(X86_64)[:4] + b"\x01" + elf_header(X86_64)[5:], "64-bit"),
        (elf_header(0x28), "ELF machine 0x28"),
    ],
)
def test_other_binaries_are_refused(header: bytes, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        deploy.elf_architecture(header)


def test_broken_artifacts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"not found: run `make zip` first"):
        deploy.read_artifact(tmp_path / "function.zip")
    (tmp_path / "function.zip").write_bytes(b"not a zip")
    with pytest.raises(DeployError, match="not a zip"):
        deploy.read_artifact(tmp_path / "function.zip")
    with zipfile.ZipFile(tmp_path / "function.zip", "w") as z:
        z.writestr("handler.py", "")
    with pytest.raises(DeployError, match="no `bootstrap` at its root"):
        deploy.read_artifact(tmp_path / "function.zip")
    with pytest.raises(DeployError, match=r"not executable \(mode 644\)"):
        deploy.read_artifact(make_zip(tmp_path, mode=0o644))


def test_zip_changed_since_the_build_recorded_its_sha256_is_refused(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path)
    recorded = tmp_path / "function.zip.sha256"
    recorded.write_text(f"{hashlib.sha256(zip_path.read_bytes()).hexdigest()}  function.zip\n")
    assert deploy.read_artifact(zip_path).code_sha256 == sha(zip_path)
    recorded.write_text(f"{hashlib.sha256(b'another build').hexdigest()}  function.zip\n")
    with pytest.raises(
        DeployError, match=r"not the zip the build recorded in function\.zip\.sha256"
    ):
        deploy.read_artifact(zip_path)


def test_zip_over_the_direct_upload_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "function.zip"
    with open(big, "wb") as f:  # sparse: 50 MiB + 1 byte, no disk used
        f.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(DeployError, match="at most 50 MiB"):
        deploy.read_artifact(big)
