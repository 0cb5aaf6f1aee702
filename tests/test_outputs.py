"""What the build leaves in DIST is replaced, never written through a link someone planted
there (build/atomic.py): each writer, with a link planted at its output's name (and at the
temporary name the zip used to be written under), leaves the link's target untouched."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from cyclonedx.model.bom import Bom

from build import atomic, image, pipeline, record, static
from build.sbom import document

KEPT = b"someone else's file\n"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    return folder


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """What a planted link points at: another user's file, ~/.bashrc."""
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_bytes(KEPT)
    return path


def plant(dist: Path, target: Path, *names: str) -> None:
    for name in names:
        (dist / name).symlink_to(target)


def replaced(path: Path, target: Path, mode: int = atomic.DATA_MODE) -> bytes:
    """The output's bytes, once it is checked to be a new file of its own and the link's
    target untouched, with no temporary file left beside it."""
    assert target.read_bytes() == KEPT
    assert not path.is_symlink() and path.is_file()
    assert path.stat().st_mode & 0o777 == mode
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    return path.read_bytes()


def elf_bootstrap(dist: Path) -> Path:
    """An ELF64 x86_64 header: all that the zip and the image read of a bootstrap."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    bootstrap = dist / "bootstrap"
    bootstrap.write_bytes(header + b"static")
    return bootstrap


def test_replace_file_replaces_a_link_and_leaves_its_target(dist: Path, target: Path) -> None:
    plant(dist, target, "out.txt")
    atomic.replace_file(dist / "out.txt", "new\n")
    assert replaced(dist / "out.txt", target) == b"new\n"


def test_a_failed_write_leaves_the_old_file_and_nothing_else(dist: Path) -> None:
    (dist / "out.txt").write_text("old\n")
    with pytest.raises(RuntimeError), atomic.replacing(dist / "out.txt") as written:
        written.write_text("half")
        raise RuntimeError("the tool failed")
    assert [p.name for p in dist.iterdir()] == ["out.txt"]
    assert (dist / "out.txt").read_text() == "old\n"


def test_make_zip_replaces_links_at_the_zip_and_its_sha256(dist: Path, target: Path) -> None:
    elf_bootstrap(dist)
    plant(dist, target, "function.zip", "function.zip.sha256", "function.zip.tmp")
    zip_path = pipeline.write_function_zip(dist)
    assert replaced(zip_path, target).startswith(b"PK")
    assert replaced(dist / "function.zip.sha256", target).endswith(b"  function.zip\n")
    assert (dist / "function.zip.tmp").is_symlink()  # not used: left as it was


def test_make_image_replaces_links_at_the_archive_and_its_sha256(dist: Path, target: Path) -> None:
    bootstrap = elf_bootstrap(dist)
    plant(dist, target, image.IMAGE_NAME, f"{image.IMAGE_NAME}.sha256")
    image.write_image(bootstrap, dist / image.IMAGE_NAME)
    assert replaced(dist / image.IMAGE_NAME, target)[257:262] == b"ustar"
    assert replaced(dist / f"{image.IMAGE_NAME}.sha256", target).endswith(b"image.oci.tar\n")


def test_the_build_record_replaces_a_link(dist: Path, target: Path) -> None:
    elf_bootstrap(dist)
    plant(dist, target, record.RECORD)
    record.write_record(dist, record.Inputs(), "x86_64")
    assert b'"bootstrap_sha256"' in replaced(dist / record.RECORD, target)
    assert record.read_record(dist) is not None


def test_the_sbom_replaces_a_link(
    dist: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = elf_bootstrap(dist)
    plant(dist, target, document.SBOM_NAME)
    # What the SBOM says is test_sbom.py's; here only where it is written.
    monkeypatch.setattr(document, "read_contents", lambda path: None)
    monkeypatch.setattr(document, "make_bom", lambda *args: Bom())
    document.write_sbom(bootstrap)
    assert b'"bomFormat": "CycloneDX"' in replaced(dist / document.SBOM_NAME, target)


def test_make_static_replaces_a_link_at_the_bootstrap(
    dist: Path, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any dynamic program will do for staticx: /bin/true, alone in its "onedir" tree.
    program = tmp_path / "frozen" / "bootstrap"
    program.parent.mkdir()
    shutil.copy("/bin/true", program)
    monkeypatch.setenv("STATICLAMBDA_STOCK_LOADER", "1")  # the loader is test_loader.py's
    # staticx makes its output in $TMPDIR and moves it: across file systems (/tmp a
    # tmpfs, the repository on disk), a move is a copy, which follows a link.
    if Path("/dev/shm").is_dir() and os.stat("/dev/shm").st_dev != os.stat(dist).st_dev:
        monkeypatch.setattr(tempfile, "tempdir", "/dev/shm")
    plant(dist, target, "bootstrap")
    static.make_static(program, dist / "bootstrap")
    assert replaced(dist / "bootstrap", target, atomic.PROGRAM_MODE).startswith(b"\x7fELF")
