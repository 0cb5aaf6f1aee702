"""The events to compare on: EVENTS= an event file, or a folder whose *.json files are
each one event, taken in name order. Each must be JSON, as Lambda's Invoke API requires:
a file that is not is refused before anything runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from build.errors import CompareError


@dataclass(frozen=True)
class Event:
    name: str  # the file's name, as the report names the event
    body: bytes


def read_events(given: str) -> list[Event]:
    if not given.strip():
        raise CompareError(
            "give EVENTS=path: an event file, or a folder of .json files (one event each)"
        )
    path = Path(given)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
        if not files:
            raise CompareError(f"EVENTS={given} holds no .json file: put one event in each")
    elif path.is_file():
        files = [path]
    else:
        raise CompareError(f"EVENTS={given} does not exist")
    return [read_event(f) for f in files]


def read_event(path: Path) -> Event:
    try:
        body = path.read_bytes()
    except OSError as e:
        raise CompareError(f"EVENTS: {path}: {e.strerror}") from None
    try:
        json.loads(body)
    except json.JSONDecodeError as e:
        raise CompareError(
            f"EVENTS: {path} is not JSON ({e.msg}: line {e.lineno} column {e.colno}); "
            "Lambda takes JSON events only"
        ) from None
    except UnicodeDecodeError:
        raise CompareError(f"EVENTS: {path} is not UTF-8 JSON; Lambda takes JSON only") from None
    return Event(path.name, body)
