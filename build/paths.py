"""One home for the build's places and defaults: the repository, its cache, the default handler.

CACHE is where downloads and per-key builds are kept (the emulator, the streaming loader,
build environments, benchmark builds); STATICLAMBDA_CACHE moves all of them at once.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("STATICLAMBDA_CACHE") or ROOT / ".cache")

# The handler built, deployed and benchmarked when none is named: handlers/echo.py.
DEFAULT_HANDLER = "handlers.echo.handler"
