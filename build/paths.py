"""One home for the build's places and defaults: the repository, its cache, the default handler.

CACHE is where downloads and per-key builds are kept (the emulator, the streaming loader,
build environments, benchmark builds); STATICLAMBDA_CACHE moves all of them at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from build.elf import host_architecture

ROOT = Path(__file__).resolve().parent.parent
# An arm64 build root mounts this same repository (build/archroot.py): its build
# environments, PyInstaller work and loader are arm64 and must not be mistaken
# for this machine's, whose interpreter reports the same path and version.
_BASE = Path(os.environ.get("STATICLAMBDA_CACHE") or ROOT / ".cache")
CACHE = _BASE if host_architecture() == "x86_64" else _BASE / "arm64"

# The handler built, deployed and benchmarked when none is named: handlers/echo.py.
DEFAULT_HANDLER = "handlers.echo.handler"
