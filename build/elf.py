"""What an ELF file's headers say: its architecture (Lambda's word for it) and
whether it asks for a dynamic loader.

`ldd` answers only for the machine's own architecture (it runs the file's
loader), so an aarch64 bootstrap built on x86_64 is judged from its headers
instead: a static executable has no PT_INTERP program header (no loader to
name) and no PT_DYNAMIC one (nothing for a loader to do). The same reading
works for both architectures, so build/verify.py uses it for every build.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass
from pathlib import Path

# ELF e_machine values of the two instruction sets Lambda runs.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
# `uname -m` and Lambda spell them differently.
ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
PT_DYNAMIC, PT_INTERP = 2, 3
ET_EXEC, ET_DYN = 2, 3


class ElfError(Exception):
    pass


class NotElf64(ElfError):
    """An ELF file, but 32-bit or big-endian: Lambda runs neither."""


def header_machine(header: bytes) -> int:
    """e_machine of a 64-bit little-endian ELF file, from its first 20 bytes (or more).

    ElfError when it is no ELF file, NotElf64 when it is another kind: each caller says it in
    its own words (deploy of a zip's member, `make image` of a file).
    """
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if header[4] != 2 or header[5] != 1:
        raise NotElf64("not a 64-bit little-endian ELF")
    (e_machine,) = struct.unpack_from("<H", header, 18)
    return int(e_machine)


@dataclass(frozen=True)
class ElfInfo:
    architecture: str
    executable: bool
    interpreter: str | None  # PT_INTERP's path, when there is one
    dynamic: bool  # a PT_DYNAMIC segment


def host_architecture() -> str:
    """This machine's architecture in Lambda's words (x86_64 or arm64)."""
    machine = platform.machine().lower()
    return ARCH_ALIASES.get(machine, machine)


def lambda_architecture(value: str) -> str:
    """ARCH= as given (x86_64, amd64, arm64, aarch64) in Lambda's words."""
    if value.lower() not in ARCH_ALIASES:
        raise ElfError(f"ARCH={value} is neither x86_64 nor arm64")
    return ARCH_ALIASES[value.lower()]


def read(path: Path) -> ElfInfo:
    """The headers of a 64-bit little-endian ELF file (the only kind Lambda runs)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF":
            raise ElfError(f"{path} is not an ELF file")
        if header[4] != 2 or header[5] != 1:
            raise ElfError(f"{path} is not a 64-bit little-endian ELF; Lambda runs only those")
        e_type, e_machine = struct.unpack_from("<HH", header, 16)
        if e_machine not in ELF_MACHINES:
            raise ElfError(f"{path} is for ELF machine {e_machine:#x}, neither x86_64 nor arm64")
        (e_phoff,) = struct.unpack_from("<Q", header, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", header, 54)
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
        interpreter, dynamic = None, False
        for i in range(e_phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", table, i * e_phentsize
            )
            if p_type == PT_DYNAMIC:
                dynamic = True
            elif p_type == PT_INTERP:
                f.seek(p_offset)
                interpreter = f.read(p_filesz).rstrip(b"\0").decode(errors="replace")
    return ElfInfo(ELF_MACHINES[e_machine], e_type in (ET_EXEC, ET_DYN), interpreter, dynamic)


def architecture(path: Path) -> str | None:
    """The file's Lambda architecture, or None when it is not an ELF executable we know."""
    try:
        return read(path).architecture
    except (OSError, ElfError, struct.error):
        return None
