"""build/compare/diff.py, known.py and report.py: what differs between two observations,
said in short lines; the known differences left out and named, never hidden; the
report's lines and its JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from build.compare.diff import differences, verdict
from build.compare.known import KNOWN
from build.compare.normalise import Observed
from build.compare.report import Compared, event_lines, summary_lines, write_json

BASE = Observed("success", 200, {"ok": True, "items": [1, 2]}, ("order received",), ("END",))
WARNING = "[WARNING]\t<time>\t\tLAMBDA_WARNING: Unhandled exception. The most likely cause..."


def test_equal_observations_are_the_same() -> None:
    assert verdict(BASE, replace(BASE)).same
    assert verdict(BASE, replace(BASE)).known == []


def test_replies_are_compared_as_json_structure() -> None:
    a = replace(BASE, reply={"b": 1, "a": [1, 2, 3], "f": True, "n": 1})
    b = replace(BASE, reply={"a": [1, 5], "b": 1, "f": 1, "n": 1.0, "only": None})
    assert differences(a, b) == [
        "reply $.a[1]: A 2 | B 5",
        "reply $.a[2]: only A has it: 3",
        "reply $.f: A true | B 1",  # a bool is not a number
        "reply $.n: A 1 | B 1.0",
        "reply $.only: only B has it: null",
    ]
    reordered = replace(BASE, reply={"items": [1, 2], "ok": True})
    assert differences(BASE, reordered) == []  # keys in any order


def test_an_error_against_a_value_is_one_line() -> None:
    error = {"errorType": "FileNotFoundError", "errorMessage": "no data.txt", "stackTrace": []}
    assert differences(replace(BASE, reply=error), BASE) == [
        'reply: A error FileNotFoundError: "no data.txt" | B {"ok": true, "items": [1, 2]}'
    ]


def test_init_status_and_log_differences_are_named() -> None:
    a = replace(BASE, log=("start", "one\rtwo", "end"), status=502, init="error")
    b = replace(BASE, log=("start", "one\rTWO", "extra", "end"), platform=("END", "REPORT"))
    assert differences(a, b) == [
        "init: A error | B success",
        "emulator status: A 502 | B 200",
        'log entry 2 line 2: A "two" | B "TWO"',
        'log: only B wrote "extra"',
        'platform log: only B wrote "REPORT"',
    ]
    record = {"level": "INFO", "message": "stored", "order": 1}
    a, b = replace(BASE, log=(record,)), replace(BASE, log=({**record, "order": 2},))
    assert differences(a, b) == ["log entry 1 $.order: A 1 | B 2"]


def test_a_known_difference_is_left_out_and_named() -> None:
    managed = replace(BASE, log=(WARNING, "[ERROR] RuntimeError: init failed"))
    provided = replace(BASE, log=("[ERROR] RuntimeError: init failed",))
    seen = verdict(provided, managed)
    assert seen.same
    assert [k.name for k in seen.known] == ["awslambdaric's LAMBDA_WARNING before an init error"]
    # The SDK's User-Agent: the managed runtime's name in it is Lambda's doing.
    agent = "Boto3/1.43 md/Botocore#1.43 ua/2.1 os/linux lang/python#3.11.2"
    a = replace(BASE, reply={"agent": agent})
    b = replace(BASE, reply={"agent": agent + " exec-env/AWS_Lambda_python3.11"})
    assert [k.name for k in verdict(a, b).known] == [KNOWN[0].name]
    assert verdict(a, b).same


def test_an_error_message_split_into_lines_is_a_known_difference() -> None:
    """awslambdaric, outside Lambda's telemetry fd, writes a multi-line error message's
    newlines as they are; the bootstrap keeps the record one entry (\r)."""
    ours = replace(BASE, log=("[ERROR] ValidationError: 1 error\rname\rTraceback (most...",))
    theirs = replace(BASE, log=("[ERROR] ValidationError: 1 error", "name\rTraceback (most..."))
    seen = verdict(ours, theirs)
    assert seen.same and [k.name for k in seen.known] == ["a logged error's message lines"]
    other = replace(BASE, log=("[ERROR] ValidationError: 1 error", "age\rTraceback (most..."))
    assert verdict(ours, other).differences == ['log entry 2: A "name" | B "age"']


def test_a_known_difference_is_named_only_where_it_explains_some() -> None:
    a = replace(BASE, log=("[ERROR] E: x\rTraceback\r  File a",), reply={"n": 1})
    b = replace(BASE, log=("[ERROR] E: x\rTraceback\r  File a",), reply={"n": 2})
    assert verdict(a, b).known == []  # both wrote \r: splitting explains nothing


def test_a_known_difference_does_not_hide_another() -> None:
    a = replace(BASE, log=("[ERROR] RuntimeError: init failed",), reply={"frozen": True})
    b = replace(BASE, log=(WARNING, "[ERROR] RuntimeError: init failed"), reply={"frozen": False})
    seen = verdict(a, b)
    assert seen.differences == ["reply $.frozen: A true | B false"]
    assert len(seen.known) == 1


def test_every_known_difference_says_why() -> None:
    for known in KNOWN:
        assert known.scope in ("entry", "text", "lines") and len(known.reason) > 60, known.name


def test_the_report_has_a_line_per_event_and_a_summary(tmp_path: Path) -> None:
    same = Compared(
        "a.json", {"A": BASE, "B": BASE}, {"A": 301.4, "B": 120.0}, {}, verdict(BASE, BASE)
    )
    other = replace(BASE, reply={"ok": False, "items": [1, 2]})
    differs = Compared(
        "b.json", {"A": BASE, "B": other}, {"A": None, "B": 99.6}, {}, verdict(BASE, other)
    )
    warned = replace(BASE, log=(WARNING, *BASE.log))
    known = Compared(
        "c.json", {"A": BASE, "B": warned}, {"A": 1, "B": 2}, {}, verdict(BASE, warned)
    )
    assert event_lines(same) == ["a.json: same  (INIT A 301 ms, B 120 ms)"]
    assert event_lines(differs) == [
        "b.json: differs  (INIT A no INIT REPORT, B 100 ms)",
        "    reply $.ok: A true | B false",
    ]
    assert event_lines(known)[0].startswith("c.json: same but for known differences")
    summary = summary_lines([same, differs, known])
    assert summary[0] == (
        "summary: 1 of 3 events the same, 1 the same but for known differences, 1 differ: b.json"
    )
    assert KNOWN[1].reason in summary[-1]

    report = tmp_path / "report.json"
    replies = {"A": '{"ok": true}', "B": '{"ok": false}'}
    write_json(report, {"handler": "app.handler"}, [replace(differs, replies=replies)])
    written = json.loads(report.read_text())
    assert written["handler"] == "app.handler"
    assert written["summary"] == {
        "events": 1,
        "same": 0,
        "same_but_for_known": 0,
        "differ": ["b.json"],
    }
    [event] = written["events"]
    assert event["result"] == "differs" and event["differences"] == ["reply $.ok: A true | B false"]
    assert event["sides"]["B"]["reply"] == '{"ok": false}'
    assert event["sides"]["B"]["observed"]["reply"] == {"ok": False, "items": [1, 2]}
    assert len(written["known_differences"]) == len(KNOWN)
