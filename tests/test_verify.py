"""Stage 3, verify: a dynamic executable must never pass for a static one.

The bootstrap's own build (test_binary.py, test_docker.py) shows the check accepting a
static file; these show it refusing the others, in the words of ldd and file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from build.errors import BuildError
from build.verify import verify_static

STATIC_C = "int main(void) { return 0; }\n"


def executable(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o755)
    return path


def test_a_dynamic_executable_is_refused_with_what_ldd_says(tmp_path: Path) -> None:
    # /bin/ls is dynamically linked on every distribution this builds on.
    ls = executable(tmp_path / "bootstrap", Path("/bin/ls").read_bytes())
    with pytest.raises(BuildError) as refused:
        verify_static(ls)
    message = str(refused.value)
    assert message.startswith(f"{ls} is not static; ldd says: ")
    assert "=>" in message or "linux-vdso" in message  # ldd's first library line


def test_what_ldd_calls_not_dynamic_must_still_be_a_static_elf(tmp_path: Path) -> None:
    # ldd says "not a dynamic executable" of a script too: file has the last word.
    if shutil.which("file") is None:
        pytest.skip("no `file` command: verify_static checks with ldd alone (apt-get install file)")
    script = executable(tmp_path / "bootstrap", b"#!/bin/sh\necho hi\n")
    with pytest.raises(
        BuildError, match=r"is not statically linked; file says: POSIX shell script"
    ):
        verify_static(script)


def test_a_static_executable_passes_unless_its_mode_is_wrong(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build a static program (apt-get install gcc libc6-dev)")
    (tmp_path / "main.c").write_text(STATIC_C)
    program = tmp_path / "bootstrap"
    built = subprocess.run(
        [gcc, "-static", "-o", str(program), str(tmp_path / "main.c")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(
            f"gcc -static failed (no static libc? apt-get install libc6-dev): {built.stderr}"
        )
    program.chmod(0o755)
    lines = verify_static(program)
    assert lines[0] == "ldd:  not a dynamic executable"
    assert len(lines) == 1 or "statically linked" in lines[1]
    program.chmod(0o700)
    with pytest.raises(BuildError, match=r"is mode 0o700, not 0755"):
        verify_static(program)
