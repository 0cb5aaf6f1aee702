"""build/loader.py: the patched staticx loader, or staticx's own with one line
saying what was skipped and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from build import loader


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(loader, "CACHE", tmp_path / "loader")
    monkeypatch.delenv(loader.STOCK_VARIABLE, raising=False)
    return tmp_path / "loader"


def test_without_the_tools_and_without_root_the_stock_loader_is_used_and_said(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(loader.shutil, "which", lambda tool: None)
    monkeypatch.setattr(loader.os, "geteuid", lambda: 1000)
    assert loader.patched_loader() is None
    said = capsys.readouterr().out.strip().splitlines()
    assert said == [
        "loader: skipped the streaming loader: musl-gcc, scons, patch missing "
        "(as root: apt-get install musl-tools patch scons); " + loader.STOCK_COST
    ]
    assert not empty_cache.exists()  # nothing downloaded, nothing built


def test_the_stock_loader_can_be_asked_for(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(loader.STOCK_VARIABLE, "1")
    assert loader.patched_loader() is None
    assert "stock loader (STATICLAMBDA_STOCK_LOADER is set)" in capsys.readouterr().out


def test_the_patch_keeps_staticx_licence_notice_and_names_what_it_changes() -> None:
    text = loader.PATCH.read_text()
    head = text[: text.index("--- a/")]
    assert "GNU General Public License, version 2 or later" in head
    changed = [line.split()[1] for line in text.splitlines() if line.startswith("+++ b/")]
    assert changed == ["b/SConstruct", "b/bootloader/extract.c", "b/libtar/extract.c"]
