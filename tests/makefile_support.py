"""Run `make` for real, with a `docker` and a `python` that only record the
arguments they were given: what a recipe passes is then checked as the argv a
program receives, not as the text `make -n` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import ROOT

# What the Makefile reads from the environment; a developer's shell must not steer the tests.
MAKE_VARIABLES = [
    "HANDLER",
    "SRC",
    "REQUIREMENTS",
    "EVENT",
    "EVENT_FILE",
    "FUNCTION",
    "DIST",
    "ROLE",
    "RUNTIME",
    "ARCH",
    "REGION",
    "MEMORY",
    "TIMEOUT",
    "CREATE_ROLE",
    "DRY_RUN",
    "BENCH_ARGS",
    "ONLY_BINARY",
    "EXCLUDE",
    "ADD_DATA",
    "INIT_CHECK",
    "PROVIDED_SDK",
    "PASS_ENV",
    "INIT_TRACE",
    "AWS_CREDENTIALS",
    "PACKAGE",
    "IMAGE_REPOSITORY",
    "IMAGE_TAG",
    "LOGICAL_ID",
    "CODE_URI",
    "ARTIFACTS_DIR",
    "ENV_FILE",
    "ENV",
    "FORCE",
    "EVENTS",
    "REPORT",
    "LOG_FORMAT",
    "BUILDER",
    "AMAZON_LINUX",
    "BASE_IMAGE",
    "PLATFORM",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
]

RECORDER = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""


def recorders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(bin dir with `docker`, fake python, the log of every call's argv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("docker", "python"):
        tool = bin_dir / name
        tool.write_text(RECORDER.format(python=sys.executable))
        tool.chmod(0o755)
    return bin_dir, bin_dir / "python", tmp_path / "argv.jsonl"


def recorded_make(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[list[list[str]], str]:
    """Runs `make ARGS` for real with the recorders; returns each call's argv and the output."""
    bin_dir, python, log = recorders(tmp_path)
    full = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    full["PATH"] = f"{bin_dir}{os.pathsep}{full.get('PATH', '')}"
    full.update(env or {})
    full["ARGV_LOG"] = str(log)
    ran = subprocess.run(
        ["make", "--no-print-directory", f"PY={python}", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return calls, ran.stdout + ran.stderr
