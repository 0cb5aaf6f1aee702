"""Stage 3, verify: the build fails unless the result is static, by the words
of the tools a user would ask (`ldd`, `file`) and by the ELF headers themselves.

`ldd` can judge only a binary of this machine's architecture (it runs the
binary's loader); for another one (arm64 built on x86_64, through qemu) it would
say "not a dynamic executable" of anything, so there the headers are the
evidence: no PT_INTERP (no loader named) and no PT_DYNAMIC (nothing to link).
The headers are checked for every build, whatever `ldd` says.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from build.elf import ElfError, host_architecture, read
from build.elf import architecture as elf_architecture
from build.errors import BuildError

NOT_DYNAMIC = "not a dynamic executable"
# What `file -b` says of each architecture's executables.
FILE_MACHINE = {"x86_64": "x86-64", "arm64": "ARM aarch64"}


def ldd_report(path: Path) -> str:
    # ldd exits 1 for a static file; its words are what count.
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip()


def file_report(path: Path) -> str | None:
    if shutil.which("file") is None:
        return None
    return subprocess.run(
        ["file", "-b", str(path)], capture_output=True, text=True, check=False
    ).stdout.strip()


def header_report(path: Path) -> str:
    """The ELF headers' evidence, one line; raises BuildError when they name a loader."""
    try:
        info = read(path)
    except ElfError as e:
        raise BuildError(str(e)) from None
    if info.interpreter is not None:
        raise BuildError(f"{path} is not static: it names the loader {info.interpreter}")
    if info.dynamic:
        raise BuildError(f"{path} is not static: it has a dynamic section (PT_DYNAMIC)")
    return f"{info.architecture}, no PT_INTERP, no PT_DYNAMIC"


def verify_static(path: Path, architecture: str | None = None) -> list[str]:
    """The evidence, one line each; raises BuildError when it is not static, or not
    of ``architecture`` when one is asked for."""
    lines = []
    arch = elf_architecture(path)  # None: not an ELF executable; the checks below say so
    if arch is None or arch == host_architecture():
        ldd = ldd_report(path)
        if NOT_DYNAMIC not in ldd:
            first = ldd.splitlines()[0] if ldd else "?"
            raise BuildError(f"{path} is not static; ldd says: {first}")
        lines.append(f"ldd:  {ldd}")
    else:
        lines.append(f"ldd:  not asked: it reads only {host_architecture()} binaries")
    kind = file_report(path)
    if kind is not None:
        if "statically linked" not in kind:
            raise BuildError(f"{path} is not statically linked; file says: {kind}")
        if arch is not None and FILE_MACHINE[arch] not in kind:
            raise BuildError(f"{path}: file says {kind}, not {FILE_MACHINE[arch]}")
        lines.append(f"file: {kind}")
    lines.append(f"elf:  {header_report(path)}")
    if architecture is not None and arch != architecture:
        raise BuildError(f"{path} is built for {arch}, not {architecture}")
    if path.stat().st_mode & 0o755 != 0o755:
        raise BuildError(f"{path} is mode {oct(path.stat().st_mode & 0o777)}, not 0755")
    return lines
