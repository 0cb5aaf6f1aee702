"""An error's stack trace as AWS's Python runtime reports it: each frame of the
function's own code with its absolute path in the code folder, its line, its
function and its source line, in the error payload and in the log record (text
and JSON), the runtime's own frames left out.

Compared field by field with awslambdaric 4.2.2 on the same function (an error
raised three calls deep in tests/fixtures/apifunc/orders.py), both under the
official emulator (tests/side_by_side.py), each code folder's path written as
`$TASK_ROOT`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from side_by_side import APIFUNC, TASK_ROOT, Reply, Runtime

BAD_ORDER = {"action": "order", "order": {"items": {"apple": 1, "kiwi": 2}}}
MESSAGE = "no price for 'kiwi'"
# traceback.format_list's element: '  File "f", line n, in name\n    source\n'
FRAME = re.compile(
    r'  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>\S+)\n(?:    (?P<source>.*)\n)?'
)


def where(module: str, statement: str) -> tuple[str, int, str]:
    """(file, line, source) of the one line of the fixture holding ``statement``."""
    lines = (APIFUNC / module).read_text().splitlines()
    [number] = [n for n, text in enumerate(lines, 1) if statement in text]
    return f"{TASK_ROOT}/{module}", number, lines[number - 1].strip()


def frames(stack_trace: list[str]) -> list[tuple[str, int, str, str]]:
    parsed = []
    for element in stack_trace:
        match = FRAME.fullmatch(element)
        assert match, element
        parsed.append((match["file"], int(match["line"]), match["name"], match["source"] or ""))
    return parsed


def expected_frames() -> list[tuple[str, int, str, str]]:
    calls = [
        ("app.py", "return place_order(", "handler"),
        ("orders.py", "total = price(", "place_order"),
        ("orders.py", "total += unit_price(", "price"),
        ("orders.py", "raise ValueError(", "unit_price"),
    ]
    return [
        (file, line, name, source)
        for module, statement, name in calls
        for file, line, source in [where(module, statement)]
    ]


def bad_order(runtime: Runtime, **env: str) -> Reply:
    [reply] = runtime.invoke(BAD_ORDER, **env)
    assert reply.status == 200 and reply.errored(), reply.body
    return reply


@pytest.mark.rie
def test_an_error_three_calls_deep_is_reported_as_awslambdaric_reports_it(
    side_by_side: tuple[Runtime, Runtime],
) -> None:
    ours, theirs = (bad_order(runtime) for runtime in side_by_side)
    assert frames(ours.body["stackTrace"]) == expected_frames()
    assert frames(theirs.body["stackTrace"]) == expected_frames()
    assert ours.body["stackTrace"] == theirs.body["stackTrace"]
    assert (ours.body["errorType"], ours.body["errorMessage"]) == ("ValueError", MESSAGE)
    assert {k: v for k, v in ours.body.items() if k != "requestId"} == {
        k: v for k, v in theirs.body.items() if k != "requestId"
    }


@pytest.mark.rie
def test_the_logged_error_is_awslambdaric_s_in_text(side_by_side: tuple[Runtime, Runtime]) -> None:
    ours, theirs = (error_event(bad_order(runtime).log) for runtime in side_by_side)
    lines = ours.split("\r")
    assert lines[:2] == [f"[ERROR] ValueError: {MESSAGE}", "Traceback (most recent call last):"]
    # Indented with no-break spaces, which CloudWatch keeps.
    file, line, source = where("orders.py", "raise ValueError(")
    assert f'\u00a0\u00a0File "{file}", line {line}, in unit_price' in lines
    assert f"\u00a0\u00a0\u00a0\u00a0{source}" in lines
    assert ours == theirs


@pytest.mark.rie
def test_the_logged_error_is_awslambdaric_s_in_json(side_by_side: tuple[Runtime, Runtime]) -> None:
    ours, theirs = (
        json_error(bad_order(runtime, AWS_LAMBDA_LOG_FORMAT="JSON").log) for runtime in side_by_side
    )
    assert frames(ours["stackTrace"]) == expected_frames()
    assert ours.keys() == theirs.keys()
    assert {k: v for k, v in ours.items() if k not in ("timestamp", "requestId")} == {
        k: v for k, v in theirs.items() if k not in ("timestamp", "requestId")
    }


def error_event(log: str) -> str:
    """The text log event of the error: its lines joined by \\r, as written."""
    [event] = re.findall(rf"\[ERROR\] ValueError: {re.escape(MESSAGE)}[^\n]*", log)
    return str(event)


def json_error(log: str) -> dict[str, Any]:
    [record] = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"errorType"' in line and '"level"' in line
    ]
    return dict(record)
