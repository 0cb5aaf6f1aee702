"""Bounded caches (build/caches.py): the last few build folders and environments
are kept, within a size cap, never the one in use nor one another build holds;
`make clean-cache` empties both. Small fake folders stand for the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT

from build import caches
from build.caches import ENV_USED, Limits
from build.errors import BuildError


def fake(parent: Path, name: str, size: int, used: float, marker: str | None = None) -> Path:
    """A folder of ``size`` bytes last used at ``used`` (its own or its marker's mtime)."""
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "payload").write_bytes(b"x" * size)
    stamp = folder / marker if marker else folder
    if marker:
        stamp.write_text("")
    os.utime(stamp, (used, used))
    return folder


def names(parent: Path) -> set[str]:
    return {p.name for p in parent.iterdir() if p.is_dir()}


@pytest.fixture
def held() -> Iterator[None]:
    """What a test's own build holds is released after it (as at a build's end)."""
    yield
    for handle in caches._held.values():
        handle.close()
    caches._held.clear()


@pytest.fixture
def another_build(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A concurrent build: another process holding a folder as a build does."""
    script = (
        "import sys; from pathlib import Path; from build import caches; "
        "caches.hold(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "envs" / "held")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield process
    if process.poll() is None:
        process.communicate("")


def test_the_newest_are_kept_and_the_oldest_removed(tmp_path: Path) -> None:
    now = time.time()
    for age in range(6):
        fake(tmp_path, f"b{age}", 10, now - age * 60)
    removed = caches.prune(tmp_path, 3, None, None, in_use=tmp_path / "b0")
    assert names(tmp_path) == {"b0", "b1", "b2"}
    assert sorted(r.folder.name for r in removed) == ["b3", "b4", "b5"]
    assert all(r.size == 10 for r in removed)


def test_the_one_in_use_is_kept_even_when_oldest(tmp_path: Path) -> None:
    now = time.time()
    for age in range(4):
        fake(tmp_path, f"b{age}", 10, now - age * 60)
    caches.prune(tmp_path, 2, None, None, in_use=tmp_path / "b3")
    assert names(tmp_path) == {"b3", "b0"}  # b3 counts among the 2


def test_the_size_cap_removes_more_than_the_count_would(tmp_path: Path) -> None:
    now = time.time()
    for age in range(4):
        fake(tmp_path, f"e{age}", 1000, now - age * 60, ENV_USED)
    removed = caches.prune(tmp_path, 5, 2500, ENV_USED, in_use=tmp_path / "e0")
    assert names(tmp_path) == {"e0", "e1"}
    assert sum(r.size for r in removed) == 2000
    # The one in use stays even alone over the cap.
    caches.prune(tmp_path, 5, 10, ENV_USED, in_use=tmp_path / "e1")
    assert names(tmp_path) == {"e1"}


def test_an_environment_another_build_holds_is_never_removed(
    tmp_path: Path, another_build: subprocess.Popen[str], held: None
) -> None:
    envs = tmp_path / "envs"
    now = time.time()
    fake(envs, "held", 1000, now - 3600, ENV_USED)  # the oldest
    fake(envs, "old", 1000, now - 1800, ENV_USED)
    mine = fake(envs, "mine", 1000, now - 7200, ENV_USED)
    caches.use_env(mine, Limits(keep_envs=1))
    assert names(envs) == {"mine", "held"}
    assert os.stat(mine / ENV_USED).st_mtime >= now  # touched: the last used now
    # Once that build ends, its environment goes like any other.
    another_build.communicate("")
    caches.use_env(mine, Limits(keep_envs=1))
    assert names(envs) == {"mine"}


def test_a_build_folder_being_made_is_not_removed(tmp_path: Path, held: None) -> None:
    now = time.time()
    making = tmp_path / "making"
    with caches.making(making):
        fake(tmp_path, "done", 10, now)
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from build import caches; "
                "print(caches.remove_unless_held(Path(sys.argv[1])))",
                str(making),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert probe.stdout.strip() == "None"
    # Made, it stays held (shared) by this build until it ends.
    assert caches._held[making]


def test_the_build_says_what_it_pruned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], held: None
) -> None:
    now = time.time()
    for age in range(1, 4):
        fake(tmp_path / "build", f"w{age}", 2_000_000, now - age * 60)
    caches.use_workdir(tmp_path / "build" / "w0", Limits(keep_builds=2))
    assert names(tmp_path / "build") == {"w0", "w1"}
    assert capsys.readouterr().out == (
        "    cache: removed 2 build folders (4 MB) beyond the last 2 (STATICLAMBDA_KEEP_BUILDS)\n"
    )


def test_limits_are_read_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits(3, 5, 2000 * 1_000_000)
    assert Limits.from_env(
        {
            "STATICLAMBDA_KEEP_BUILDS": "1",
            "STATICLAMBDA_KEEP_ENVS": "2",
            "STATICLAMBDA_ENVS_MAX_MB": "3",
        }
    ) == Limits(1, 2, 3_000_000)
    with pytest.raises(BuildError, match="STATICLAMBDA_KEEP_ENVS=many is not a whole number"):
        Limits.from_env({"STATICLAMBDA_KEEP_ENVS": "many"})


def test_make_clean_cache_empties_both_and_says_how_much(tmp_path: Path) -> None:
    now = time.time()
    for base in (tmp_path, tmp_path / "arm64", tmp_path / "docker-al2023"):
        fake(base / "build", "w", 1_500_000, now)
        fake(base / "envs", "e", 1_500_000, now, ENV_USED)
        (base / "envs" / "e.lock").touch()
        (base / "envs" / "gone.lock").touch()  # of an environment removed earlier
    (tmp_path / "rie").mkdir()  # not a build cache: left alone
    env = {**os.environ, "STATICLAMBDA_CACHE": str(tmp_path)}
    env.pop("MAKEFLAGS", None)
    ran = subprocess.run(
        ["make", "-s", "clean-cache"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == (
        f"clean-cache: removed 3 build folders and 3 build environments (9 MB) from {tmp_path}\n"
    )
    for base in (tmp_path, tmp_path / "arm64", tmp_path / "docker-al2023"):
        assert list((base / "build").iterdir()) == []
        assert list((base / "envs").iterdir()) == []
    assert (tmp_path / "rie").is_dir()
