"""One side's run of one event, as it is compared: what differs from run to run on
its own (request ids, timestamps, durations, memory figures, the folders a side runs
in) replaced by placeholders, and error stack traces cut to the function's own frames.

    init      the cold start's INIT RTDONE status: success, error (unknown: none seen)
    status    the emulator's HTTP status for the invoke
    reply     the reply as JSON (structurally compared); an error reply (errorType and
              errorMessage) as those two and its own frames; {"(not JSON)": text} else
    log       the function's output, one entry per line the emulator copied (a logged
              record's inner newlines are \\r, so a multi-line record stays one entry);
              a line that is a JSON object is compared as one (its keys in any order)
    platform  the START, END and REPORT lines, apart: the emulator writes them while the
              runtime writes its own, so their place among the function's lines varies

The emulator's own lines are left out, and so are the INIT lines: the INIT figures are
reported beside each event, not compared.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from build.compare.frames import OwnCode

REQUEST_ID = "<request id>"
TASK_ROOT = "<task root>"
TMP = "<tmp>"
# The emulator's own lines (build/invoke.py's EMULATOR_LINE), also where a function line
# without its newline ran into one.
EMULATOR_LINE = re.compile(r"\d{2} \w{3} \d{4} \d\d:\d\d:\d\d,\d{3} \[\w+\] \(rapid\) [^\n]*\n?")
PLATFORM_LINE = re.compile(r"^(?:START|END|REPORT) RequestId: ")
REQUEST_IDS = re.compile(r"^START RequestId: (\S+)", re.MULTILINE)
INIT_DONE = re.compile(r"INIT RTDONE\(status: (\w+)\)")
# ISO 8601 (Lambda's Text and JSON logs) and Python logging's asctime (Powertools).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?")
# Epoch seconds or milliseconds (EMF's Timestamp, a deadline); only those within a day of
# now are taken for the time, so that other long numbers are left alone.
EPOCH = re.compile(r"(?<![\d.])1\d{9}(?:\d{3})?(?:\.\d+)?(?![\d.])")
EPOCH_WINDOW_S = 86_400
DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)? ?ms\b")
MEMORY = re.compile(r"(?<![\w.])\d+(?:\.\d+)? ?MB\b")


@dataclass(frozen=True)
class Observed:
    init: str
    status: int
    reply: Any
    log: tuple[Any, ...]
    platform: tuple[str, ...]


@dataclass(frozen=True)
class Places:
    """What one side's run was given and where it ran: each replaced by its placeholder."""

    own: OwnCode
    folders: Mapping[str, str]  # path -> placeholder
    request_ids: tuple[str, ...]


def places(emulator_log: str, own: OwnCode, task_roots: list[str], tmpdir: str) -> Places:
    folders = {root: TASK_ROOT for root in task_roots if root}
    if tmpdir:
        folders[tmpdir] = TMP
    return Places(own, folders, tuple(REQUEST_IDS.findall(emulator_log)))


def observe(status: int, body: bytes, emulator_log: str, where: Places) -> Observed:
    function, platform = split_log(emulator_log)
    init = INIT_DONE.search(emulator_log)
    return Observed(
        init=init.group(1) if init else "unknown",
        status=status,
        reply=reply(body, where),
        log=tuple(log_entry(line, where) for line in function),
        platform=tuple(log_text(line, where) for line in platform),
    )


def split_log(emulator_log: str) -> tuple[list[str], list[str]]:
    """(the function's lines, the START/END/REPORT lines) of the emulator's log."""

    def ended(line: re.Match[str]) -> str:
        # A function line the emulator's ran into keeps its own end.
        at_start = line.start() == 0 or emulator_log[line.start() - 1] == "\n"
        return "" if at_start else "\n"

    lines = EMULATOR_LINE.sub(ended, emulator_log).split("\n")
    if lines[-1] == "":
        lines.pop()  # what follows the last newline
    function: list[str] = []
    platform: list[str] = []
    for line in lines:
        (platform if PLATFORM_LINE.match(line) else function).append(line)
    return function, platform


def reply(body: bytes, where: Places) -> Any:
    try:
        value = json.loads(body)
    except ValueError:
        return {"(not JSON)": text(body.decode(errors="replace"), where)}
    if isinstance(value, dict) and {"errorType", "errorMessage"} <= value.keys():
        return error(value, where)
    return json_value(value, where, text)


def error(value: Mapping[str, Any], where: Places) -> dict[str, Any]:
    """An error reply or record: its type, message and own frames (the request id and
    the rest are the runtime's)."""
    return {
        "errorType": value["errorType"],
        "errorMessage": json_value(value["errorMessage"], where, text),
        "stackTrace": where.own.stack_trace(value.get("stackTrace")),
    }


def log_entry(line: str, where: Places) -> Any:
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if "stackTrace" in record:
                record = {**record, "stackTrace": where.own.stack_trace(record["stackTrace"])}
            return json_value(record, where, log_text)
    # A logged record's inner lines are separated by \r (one CloudWatch event); a
    # printed traceback's by newlines, one entry each: its frames are found either way.
    inner = where.own.traceback_lines(line.split("\r"))
    return log_text("\r".join(inner), where)


def text(value: str, where: Places) -> str:
    """A string of a reply: places, request ids and times as placeholders."""
    for folder in sorted(where.folders, key=len, reverse=True):
        value = value.replace(folder, where.folders[folder])
    for request_id in where.request_ids:
        value = value.replace(request_id, REQUEST_ID)
    value = TIMESTAMP.sub("<time>", value)
    return EPOCH.sub(lambda m: "<time>" if recent(float(m.group())) else m.group(), value)


def log_text(value: str, where: Places) -> str:
    """A string of the log: as a reply's, and durations and memory figures too."""
    return MEMORY.sub("<n> MB", DURATION.sub("<n> ms", text(value, where)))


def json_value(value: Any, where: Places, strings: Callable[[str, Places], str]) -> Any:
    if isinstance(value, str):
        return strings(value, where)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and recent(value):
        return "<time>"
    if isinstance(value, list):
        return [json_value(v, where, strings) for v in value]
    if isinstance(value, dict):
        return {strings(k, where): json_value(v, where, strings) for k, v in value.items()}
    return value


def recent(number: float) -> bool:
    """An epoch time, in seconds or milliseconds, within a day of now."""
    now = time.time()
    return any(abs(number / scale - now) < EPOCH_WINDOW_S for scale in (1, 1000))
