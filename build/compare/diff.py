"""What differs between A's and B's observation of one event, as short lines, and the
verdict: the same, the same but for known differences (build/compare/known.py), or not."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from build.compare.known import KNOWN, Known
from build.compare.normalise import Observed

SHOWN_CHARS = 160  # of a value in a difference line
MOST_LINES = 8  # difference lines per event; the rest are counted


@dataclass(frozen=True)
class Verdict:
    differences: list[str] = field(default_factory=list)  # after known differences
    known: list[Known] = field(default_factory=list)  # those that had to be left out

    @property
    def same(self) -> bool:
        return not self.differences


def verdict(a: Observed, b: Observed) -> Verdict:
    found = differences(a, b)
    used = []
    for known in KNOWN:
        if not found:
            break
        a_out, b_out = known.leave_out(a), known.leave_out(b)
        without = differences(a_out, b_out)
        if len(without) < len(found):  # it explains some of what differs
            used.append(known)
            a, b, found = a_out, b_out, without
    return Verdict(found, used)


def differences(a: Observed, b: Observed) -> list[str]:
    found = []
    if a.init != b.init:
        found.append(f"init: A {a.init} | B {b.init}")
    if a.status != b.status:
        found.append(f"emulator status: A {a.status} | B {b.status}")
    found += reply_differences(a.reply, b.reply)
    found += log_differences("log", a.log, b.log)
    found += log_differences("platform log", a.platform, b.platform)
    return found


def reply_differences(a: Any, b: Any) -> list[str]:
    """An error against a value is said in one line, not key by key."""
    if is_error(a) != is_error(b):
        return [f"reply: A {reply_shown(a)} | B {reply_shown(b)}"]
    return [f"reply {d}" for d in json_differences(a, b, "$")]


def is_error(reply: Any) -> bool:
    return isinstance(reply, dict) and {"errorType", "errorMessage"} <= reply.keys()


def reply_shown(reply: Any) -> str:
    if is_error(reply):
        return f"error {reply['errorType']}: {shown(reply['errorMessage'])}"
    return shown(reply)


def json_differences(a: Any, b: Any, path: str) -> list[str]:
    """Structural: keys in any order; a bool is not a number, an int not a float."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(a.keys() | b.keys()):
            where = f"{path}.{key}"
            if key not in b:
                found.append(f"{where}: only A has it: {shown(a[key])}")
            elif key not in a:
                found.append(f"{where}: only B has it: {shown(b[key])}")
            else:
                found += json_differences(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = []
        for i, (x, y) in enumerate(zip(a, b)):
            found += json_differences(x, y, f"{path}[{i}]")
        longer, label = (a, "A") if len(a) > len(b) else (b, "B")
        for i in range(min(len(a), len(b)), len(longer)):
            found.append(f"{path}[{i}]: only {label} has it: {shown(longer[i])}")
        return found
    if type(a) is not type(b) or a != b:
        return [f"{path}: A {shown(a)} | B {shown(b)}"]
    return []


def log_differences(
    what: str, a: Sequence[Any], b: Sequence[Any], unit: str = "entry"
) -> list[str]:
    """The entries (or a record's lines) only one side wrote, or wrote otherwise, in order."""
    keys_a, keys_b = [key(e) for e in a], [key(e) for e in b]
    found = []
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        pairs = min(a2 - a1, b2 - b1) if op == "replace" else 0
        for i in range(pairs):
            x, y = a[a1 + i], b[b1 + i]
            entry = f"{what} {unit} {a1 + i + 1}"
            if isinstance(x, dict) and isinstance(y, dict):
                found += [f"{entry} {d}" for d in json_differences(x, y, "$")]
            elif isinstance(x, str) and isinstance(y, str) and "\r" in x + y:
                # A multi-line record: its inner lines, as the entries are.
                found += log_differences(entry, x.split("\r"), y.split("\r"), "line")
            else:
                found.append(f"{entry}: A {shown(x)} | B {shown(y)}")
        found += [f"{what}: only A wrote {shown(e)}" for e in a[a1 + pairs : a2]]
        found += [f"{what}: only B wrote {shown(e)}" for e in b[b1 + pairs : b2]]
    return found


def key(entry: Any) -> str:
    return entry if isinstance(entry, str) else json.dumps(entry, sort_keys=True)


def shown(value: Any) -> str:
    """A value on one line: JSON for data, a string's \\r and no-break spaces visible."""
    text = json.dumps(value, ensure_ascii=False)
    text = text.replace("\xa0", "\\u00a0")
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def short(found: list[str]) -> list[str]:
    """At most MOST_LINES of them, and how many more."""
    if len(found) <= MOST_LINES:
        return found
    return [*found[:MOST_LINES], f"... and {len(found) - MOST_LINES} more"]
