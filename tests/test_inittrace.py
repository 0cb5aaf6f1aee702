"""runtime/inittrace.py: the init breakdown (STATICLAMBDA_INIT_TRACE=1), from
/proc's process start to the first /next: the trace itself, the runtime as a
process against the fake Runtime API, and the runtime under the official
emulator (with no credential in its log)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from support import (
    CREDENTIALS,
    assert_no_credentials,
    emulator,
    records,
    rie_log,
    serve,
)

from runtime.inittrace import InitTrace, parent_of, process_start

# --- the init breakdown -------------------------------------------------------


def test_process_start_and_parent_of_this_process() -> None:
    me, parent = os.getpid(), os.getppid()
    start = process_start(me)
    assert start is not None and 0 < start <= time.clock_gettime(time.CLOCK_BOOTTIME)
    assert parent_of(me) == parent
    parent_start = process_start(parent)
    assert parent_start is not None and parent_start <= start
    beyond_pid_max = 2**22 + 1  # Linux's highest pid_max is 2**22
    assert (process_start(beyond_pid_max), parent_of(beyond_pid_max)) == (None, None)


def test_process_start_reads_past_a_command_name_with_parentheses(tmp_path: Path) -> None:
    sleep = tmp_path / "a) b (c"  # /proc/<pid>/stat holds it as "(a) b (c)"
    sleep.symlink_to("/bin/sleep")
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    child = subprocess.Popen([str(sleep), "5"])
    try:
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().split(" ", 1)[1].startswith("(a) b (c) ")
        start = process_start(child.pid)
        assert start is not None
        assert before - 0.02 <= start <= time.clock_gettime(time.CLOCK_BOOTTIME)
        assert parent_of(child.pid) == os.getpid()
    finally:
        child.kill()
        child.wait()


INIT_LINE = re.compile(r"staticlambda init: +(\d+\.\d) ms  (.+?)  \(from \+(\d+\.\d) ms\)")
IN_ALL = re.compile(r"staticlambda init: +(\d+\.\d) ms  in all, to the first /next")


def init_phases(log: str) -> tuple[list[tuple[float, str, float]], float]:
    """(ms, phase, from ms) for each phase line, and the "in all" ms."""
    phases = [(float(ms), phase, float(at)) for ms, phase, at in INIT_LINE.findall(log)]
    [total] = IN_ALL.findall(log)
    return phases, float(total)


def test_init_trace_report_lines(capsys: pytest.CaptureFixture[str]) -> None:
    trace = InitTrace(True)
    trace.mark("Runtime API client")
    time.sleep(0.02)
    trace.mark("handler import: app.handler")
    trace.mark("first /next")
    trace.report({})
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[-1] == "" and all(line.startswith("staticlambda init: ") for line in lines[:-1])
    phases, total = init_phases(err)
    assert [phase for _, phase, _ in phases] == [
        "Python: interpreter start, imports",  # from /proc: this process's start
        "Runtime API client",
        "handler import: app.handler",
    ]
    assert phases[0][2] == 0.0 and phases[1][0] >= 20.0
    # Each phase starts where the one before ends; together they are the whole.
    for (ms, _, at), (_, _, next_at) in zip(phases, phases[1:]):
        assert abs(at + ms - next_at) <= 0.2
    assert abs(sum(ms for ms, _, _ in phases) - total) <= 5.0
    assert IN_ALL.fullmatch(lines[-2])


def test_init_trace_off_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    trace = InitTrace(False)
    trace.mark("Runtime API client")
    trace.report({})
    assert (trace.marks, capsys.readouterr().err) == ([], "")


def test_init_trace_is_the_first_lines_on_stderr(tmp_path: Path, app: tuple[Path, Path]) -> None:
    env = {"STATICLAMBDA_INIT_TRACE": "1"}
    ours = serve("runtime", tmp_path, "lambda_app.levels", [("req-a", '{"n": 1}')], env)
    lines = ours.stderr.split("\n")
    phases = [INIT_LINE.fullmatch(line) for line in lines[:3]]
    assert [phase[2] if phase else line for phase, line in zip(phases, lines)] == [
        "Python: interpreter start, imports",
        "Runtime API client",
        "handler import: lambda_app.levels",
    ]
    assert IN_ALL.fullmatch(lines[3])
    assert lines[4].startswith("staticlambda: the Runtime API failed")  # no more events
    assert "staticlambda init" not in ours.stdout


# --- under the official emulator ----------------------------------------------


@pytest.mark.rie
def test_init_trace_and_no_credentials_under_the_emulator(
    tmp_path: Path, app: tuple[Path, Path]
) -> None:
    env = {
        **CREDENTIALS,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "STATICLAMBDA_INIT_TRACE": "1",
    }
    with emulator(tmp_path, "lambda_app.secretive", env) as rie:
        status, body = rie.invoke("{}")
        log = rie_log(rie)
    error = json.loads(body)
    assert (status, error["errorType"], error["errorMessage"]) == (
        200,
        "PermissionError",
        "refused\nby policy",
    )
    # The emulator starts the runtime on the first invoke: the breakdown comes
    # after that invoke's START, within INIT, before the invoke reaches it.
    phases, total = init_phases(log)
    assert [phase for _, phase, _ in phases] == [
        "Python: interpreter start, imports",
        "Runtime API client",
        "handler import: lambda_app.secretive",
    ]
    assert 0 < total < 10_000
    assert abs(sum(ms for ms, _, _ in phases) - total) <= 5.0
    assert log.index("INIT START") < log.index("staticlambda init:") < log.index("INVOKE START")
    in_all = IN_ALL.search(log)
    assert in_all is not None and in_all.end() < log.index('{"timestamp"')
    request_id = error["requestId"]
    assert [(r["level"], r["requestId"]) for r in records(log)] == [
        ("DEBUG", request_id),
        ("INFO", request_id),
        ("ERROR", request_id),
    ]
    assert records(log)[0]["message"] == "has credentials: True"
    assert_no_credentials(log, body.decode())
