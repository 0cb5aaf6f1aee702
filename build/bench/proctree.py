"""The runtime's process tree, read from /proc: its pids, their peak resident memory
(VmHWM), the directories they unpacked into /tmp; for the Managed Instances bench,
their CPU time and their Pss and Rss (smaps_rollup)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.frozen import EXTRACTION_PREFIXES
from runtime.inittrace import parent_of

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parent_pids() -> dict[int, int]:
    """pid -> parent pid, for every process /proc shows."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        parent = parent_of(int(entry))  # the runtime's own /proc/<pid>/stat reader
        if parent is not None:  # None: it ended while we looked
            parents[int(entry)] = parent
    return parents


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (not ``root`` itself), parents before children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def tree_pids(root: int) -> list[int]:
    """``root`` and every process under it."""
    return [root, *descendants(root)]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time these processes have used, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def rollup_kb(pids: Sequence[int]) -> tuple[int, int]:
    """Summed Pss and Rss, in kB, from each process's smaps_rollup."""
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


def status_kb(pid: int, name: str) -> int:
    """A ``kB`` line of /proc/<pid>/status (VmHWM, VmRSS...); 0 once the process has ended."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{name}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kb(pid: int) -> int:
    """The process's peak resident set, in kB."""
    return status_kb(pid, "VmHWM")


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    exe: str
    hwm_kb: int  # the peak: what the bench sums
    rss_kb: int  # resident when read, to tell a passing peak from a lasting one


def tree_memory(root: int) -> list[ProcessMemory]:
    """VmHWM (and VmRSS) of each process under ``root``: the runtime's tree
    when ``root`` is the emulator (whose own memory is not counted)."""
    found = []
    for pid in descendants(root):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = "?"
        found.append(ProcessMemory(pid, exe, vm_hwm_kb(pid), status_kb(pid, "VmRSS")))
    return found


def extraction_dirs(pids: Iterable[int]) -> set[Path]:
    """The staticx and PyInstaller directories these processes run from or
    map files of: what they leave in /tmp when the emulator SIGKILLs them."""
    found = set()
    for pid in pids:
        paths = []
        try:
            paths.append(os.readlink(f"/proc/{pid}/exe"))
            with open(f"/proc/{pid}/maps") as maps:
                paths += [line.split(None, 5)[-1].strip() for line in maps if "/" in line]
        except OSError:
            continue
        for path in paths:
            parts = Path(path).parts
            for i, part in enumerate(parts[:-1]):
                if part.startswith(EXTRACTION_PREFIXES):
                    found.add(Path(*parts[: i + 1]))
                    break
    return found
