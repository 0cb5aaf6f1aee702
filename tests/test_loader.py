"""build/loader.py: the patched staticx loader, or staticx's own with one line
saying what was skipped and why."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from build import loader, paths


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


# --- nothing cached is used unchecked ---------------------------------------------

GOOD_SDIST = b"staticx sdist, as pinned"


@pytest.fixture
def stubbed(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    """The tools present, pip and the compiler stubbed: calls are recorded."""
    calls: dict[str, list[object]] = {"pip": [], "compile": []}
    monkeypatch.setattr(loader, "STATICX_SDIST_SHA256", hashlib.sha256(GOOD_SDIST).hexdigest())
    monkeypatch.setattr(loader, "missing_tools", lambda: [])

    def pip_download(folder: Path) -> subprocess.CompletedProcess[str]:
        calls["pip"].append(folder)
        if os.environ.get("OFFLINE"):
            return subprocess.CompletedProcess([], 1, "", "ERROR: network is unreachable")
        (folder / loader.STATICX_SDIST).write_bytes(GOOD_SDIST)
        return subprocess.CompletedProcess([], 0, "", "")

    def compile_loader(sdist: bytes, output: Path) -> None:
        calls["compile"].append(sdist)
        output.write_bytes(b"LOADER from " + sdist)

    monkeypatch.setattr(loader, "pip_download", pip_download)
    monkeypatch.setattr(loader, "compile_loader", compile_loader)
    return calls


def cached_sdist(cache: Path, data: bytes) -> Path:
    path = cache / "sdist" / loader.STATICX_SDIST
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def cached_loader_path(cache: Path) -> Path:
    (found,) = cache.glob(f"*/{loader.LOADER}")
    return found


def test_a_cached_sdist_with_the_pinned_hash_is_used_as_it_is(
    empty_cache: Path, stubbed: dict[str, list[object]]
) -> None:
    cached_sdist(empty_cache, GOOD_SDIST)
    assert loader.fetch_sdist(empty_cache / "sdist") == GOOD_SDIST
    assert stubbed["pip"] == []


def test_a_tampered_cached_sdist_is_downloaded_again_never_used(
    empty_cache: Path, stubbed: dict[str, list[object]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = cached_sdist(empty_cache, b"staticx sdist, with something added")
    assert loader.patched_loader() == b"LOADER from " + GOOD_SDIST
    assert stubbed["compile"] == [GOOD_SDIST] and len(stubbed["pip"]) == 1
    assert path.read_bytes() == GOOD_SDIST  # the cache holds the pinned one again
    assert "loader: the cached staticx-0.14.2.tar.gz is not the pinned one; downloading it" in (
        capsys.readouterr().out
    )


def test_a_tampered_cached_sdist_offline_gives_the_stock_loader(
    empty_cache: Path,
    stubbed: dict[str, list[object]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cached_sdist(empty_cache, b"staticx sdist, with something added")
    monkeypatch.setenv("OFFLINE", "1")
    assert loader.patched_loader() is None
    assert stubbed["compile"] == []
    assert (
        "loader: skipped the streaming loader: pip could not download staticx-0.14.2.tar.gz: "
        "ERROR: network is unreachable; " in capsys.readouterr().out
    )


def test_the_loader_is_built_once_then_checked_and_reused(
    empty_cache: Path, stubbed: dict[str, list[object]]
) -> None:
    first = loader.patched_loader()
    assert first == b"LOADER from " + GOOD_SDIST
    assert loader.patched_loader() == first
    assert stubbed["compile"] == [GOOD_SDIST]
    folder = cached_loader_path(empty_cache).parent
    assert json.loads((folder / loader.MANIFEST).read_text()) == {
        "staticx_sdist_sha256": loader.STATICX_SDIST_SHA256,
        "patch_sha256": hashlib.sha256(loader.PATCH.read_bytes()).hexdigest(),
        "bootloader_sha256": hashlib.sha256(first).hexdigest(),
    }


def test_a_tampered_cached_loader_is_said_and_built_again(
    empty_cache: Path, stubbed: dict[str, list[object]], capsys: pytest.CaptureFixture[str]
) -> None:
    good = loader.patched_loader()
    path = cached_loader_path(empty_cache)
    path.write_bytes(path.read_bytes() + b"; and something of someone else's")
    capsys.readouterr()
    assert loader.patched_loader() == good
    assert len(stubbed["compile"]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        f"    loader: {path} does not have the sha256 recorded when it was built (changed "
        "since); building it again"
    )
    assert path.read_bytes() == good


@pytest.mark.parametrize("how", ["group-writable", "another-user-s"])
def test_a_loader_and_record_others_could_write_are_not_trusted(
    empty_cache: Path, stubbed: dict[str, list[object]], how: str
) -> None:
    loader.patched_loader()
    path = cached_loader_path(empty_cache)
    manifest = path.with_name(loader.MANIFEST)
    # Both rewritten to agree, by someone who may write there but is not this user.
    forged = b"LOADER of someone else"
    path.write_bytes(forged)
    recorded = json.loads(manifest.read_text())
    recorded["bootloader_sha256"] = hashlib.sha256(forged).hexdigest()
    manifest.write_text(json.dumps(recorded))
    if how == "group-writable":
        manifest.chmod(0o664)
    elif os.geteuid() == 0:
        os.chown(manifest, 65534, 65534)
    else:
        pytest.skip("needs root to give the record to another user")
    assert loader.patched_loader() == b"LOADER from " + GOOD_SDIST
    assert len(stubbed["compile"]) == 2


def test_a_tampered_loader_that_cannot_be_built_again_is_not_used(
    empty_cache: Path,
    stubbed: dict[str, list[object]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    loader.patched_loader()
    path = cached_loader_path(empty_cache)
    path.write_bytes(b"LOADER of someone else")
    monkeypatch.setattr(loader, "missing_tools", lambda: ["musl-gcc"])
    monkeypatch.setattr(loader.os, "geteuid", lambda: 1000)
    assert loader.patched_loader() is None  # staticx's own, said in one line
    said = capsys.readouterr().out
    assert "skipped the streaming loader: musl-gcc missing" in said


def test_the_real_loader_tampered_in_the_cache_is_built_again(
    empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # For real: pip, patch, scons and musl-gcc (installed by the build when root).
    if loader.missing_tools() and os.geteuid() != 0:
        pytest.skip(f"needs {', '.join(loader.missing_tools())} or root to install them")
    # The sdist from the worktree's own cache, where any build keeps it (downloaded once).
    sdist = loader.fetch_sdist(paths.CACHE / "loader" / "sdist")
    cached_sdist(empty_cache, sdist)
    built = loader.patched_loader()
    assert built is not None and built.startswith(b"\x7fELF"), capsys.readouterr().out
    path = cached_loader_path(empty_cache)
    path.write_bytes(built + b"\0appended")
    rebuilt = loader.patched_loader()
    assert rebuilt is not None and rebuilt.startswith(b"\x7fELF")
    assert b"\0appended" not in rebuilt
    assert "does not have the sha256 recorded when it was built" in capsys.readouterr().out
