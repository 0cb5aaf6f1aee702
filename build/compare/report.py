"""What `make compare` prints (a line per event, what differs below it, a summary, the
known differences it left out with their reasons) and what --json writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from build.compare.diff import Verdict, short
from build.compare.known import KNOWN
from build.compare.normalise import Observed

SAME, SAME_BUT_KNOWN, DIFFERS = "same", "same but for known differences", "differs"


@dataclass(frozen=True)
class Compared:
    """One event: what each side did, and the verdict."""

    name: str
    observed: dict[str, Observed]  # by side, "A" and "B"
    init_ms: dict[str, float | None]
    replies: dict[str, str]  # as the emulator answered, for the report
    verdict: Verdict

    @property
    def result(self) -> str:
        if not self.verdict.same:
            return DIFFERS
        return SAME_BUT_KNOWN if self.verdict.known else SAME


def event_lines(compared: Compared) -> list[str]:
    inits = ", ".join(f"{side} {init(compared, side)}" for side in ("A", "B"))
    lines = [f"{compared.name}: {compared.result}  (INIT {inits})"]
    lines += [f"    {d}" for d in short(compared.verdict.differences)]
    lines += [f"    known: {k.name}" for k in compared.verdict.known]
    return lines


def init(compared: Compared, side: str) -> str:
    ms = compared.init_ms[side]
    shown = "no INIT REPORT" if ms is None else f"{ms:.0f} ms"
    status = compared.observed[side].init
    return shown if status == "success" else f"{shown} {status}"


def summary_lines(results: Sequence[Compared]) -> list[str]:
    same = [c for c in results if c.result == SAME]
    known = [c for c in results if c.result == SAME_BUT_KNOWN]
    differ = [c for c in results if c.result == DIFFERS]
    line = f"summary: {len(same)} of {len(results)} events the same"
    if known:
        line += f", {len(known)} the same but for known differences"
    if differ:
        line += f", {len(differ)} differ: {', '.join(c.name for c in differ)}"
    lines = [line]
    used = {k.name: k for c in results for k in c.verdict.known}
    if used:
        lines.append("known differences (build/compare/known.py), left out where named:")
        lines += [f"    {k.name}: {k.reason}" for k in used.values()]
    return lines


def write_json(path: Path, header: dict[str, Any], results: Sequence[Compared]) -> None:
    events = [
        {
            "name": c.name,
            "result": c.result,
            "differences": c.verdict.differences,
            "known": [k.name for k in c.verdict.known],
            "init_ms": c.init_ms,
            "sides": {
                side: {"reply": c.replies[side], "observed": asdict(c.observed[side])}
                for side in ("A", "B")
            },
        }
        for c in results
    ]
    report = {
        **header,
        "events": events,
        "summary": {
            "events": len(results),
            "same": sum(c.result == SAME for c in results),
            "same_but_for_known": sum(c.result == SAME_BUT_KNOWN for c in results),
            "differ": [c.name for c in results if c.result == DIFFERS],
        },
        "known_differences": [{"name": k.name, "reason": k.reason} for k in KNOWN],
    }
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
