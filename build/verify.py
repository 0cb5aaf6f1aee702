"""Stage 3, verify: the build fails unless the result is static, by the words
of the tools a user would ask (`ldd`, `file`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from build.errors import BuildError

NOT_DYNAMIC = "not a dynamic executable"


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


def verify_static(path: Path) -> list[str]:
    """The evidence, one line each; raises BuildError when it is not static."""
    ldd = ldd_report(path)
    if NOT_DYNAMIC not in ldd:
        raise BuildError(f"{path} is not static; ldd says: {ldd.splitlines()[0] if ldd else '?'}")
    lines = [f"ldd:  {ldd}"]
    kind = file_report(path)
    if kind is not None:
        if "statically linked" not in kind:
            raise BuildError(f"{path} is not statically linked; file says: {kind}")
        lines.append(f"file: {kind}")
    if path.stat().st_mode & 0o755 != 0o755:
        raise BuildError(f"{path} is mode {oct(path.stat().st_mode & 0o777)}, not 0755")
    return lines
