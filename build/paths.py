"""One home for the build's places: the repository and its cache."""

from __future__ import annotations

from pathlib import Path

from build.elf import host_architecture

ROOT = Path(__file__).resolve().parent.parent
# An arm64 build root mounts this same repository (build/archroot.py): its build
# environments, PyInstaller work and loader are arm64 and must not be mistaken
# for this machine's, whose interpreter reports the same path and version.
CACHE = ROOT / ".cache" if host_architecture() == "x86_64" else ROOT / ".cache" / "arm64"
