"""build/compare/frames.py and normalise.py: a run as it is compared. The frames of the
function's own code, wherever each side keeps it; request ids, times, durations, memory
figures and folders as placeholders; the emulator's lines left out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from build.compare.frames import Frame, OwnCode
from build.compare.normalise import observe, places, split_log

# An emulator log as the official emulator writes it: its own lines, the platform's
# START/END/REPORT, and the function's output (a logged error: one line, \r inside).
EMULATOR_LOG = (
    "03 Dec 2026 20:02:36,189 [INFO] (rapid) exec '/w/bootstrap' (cwd=/w, handler=)\n"
    "START RequestId: 2029ffdf-4b90 Version: $LATEST\n"
    "03 Dec 2026 20:02:36,257 [INFO] (rapid) INIT START(type: on-demand, phase: init)\n"
    "cold start at 2026-12-03T20:02:36.300Z\n"
    "03 Dec 2026 20:02:36,564 [INFO] (rapid) INIT RTDONE(status: success)\n"
    "03 Dec 2026 20:02:36,564 [INFO] (rapid) INIT REPORT(durationMs: 307.985000)\n"
    "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
    '\xa0\xa0File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\r'
    "\xa0\xa0\xa0\xa0return _default_decoder.decode(s)\r"
    '\xa0\xa0File "{code}/app.py", line 35, in handler\r'
    '\xa0\xa0\xa0\xa0raise ValueError("boom")\n'
    "took 12.5 ms for 2029ffdf-4b90 in {tmp}/scratch"
    "03 Dec 2026 20:02:36,570 [INFO] (rapid) INVOKE RTDONE(status: success)\n"
    "END RequestId: 2029ffdf-4b90\n"
    "REPORT RequestId: 2029ffdf-4b90\tInit Duration: 0.03 ms\tDuration: 313.34 ms\t"
    "Billed Duration: 314 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t\n"
)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A user's code folder: app.py, a package, and a dot folder of tools."""
    folder = tmp_path / "fn"
    (folder / "orders").mkdir(parents=True)
    (folder / "app.py").write_text("def handler(event, context): ...\n")
    (folder / "orders" / "check.py").write_text("def check(order): ...\n")
    (folder / ".venv" / "lib").mkdir(parents=True)
    (folder / ".venv" / "lib" / "tool.py").write_text("")
    return folder


def test_own_code_is_found_wherever_each_side_keeps_it(code: Path, tmp_path: Path) -> None:
    bundle = "/tmp/run-a"  # A's TMPDIR, where the bootstrap unpacks its bundle
    a = OwnCode(code, here="/tmp/run-a/staticx-Ab12/_internal", tmpdir=bundle)
    b = OwnCode(code, here=str(code))
    assert b.relative(str(code / "app.py")) == "app.py"
    assert b.relative(str(code / "orders" / "check.py")) == "orders/check.py"
    assert a.relative("/tmp/run-a/staticx-Ab12/_internal/orders/check.py") == "orders/check.py"
    assert a.relative("orders/check.py") == "orders/check.py"  # PyInstaller's relative names
    # Unpacked, but where the working directory is not (a process that moved elsewhere).
    elsewhere = OwnCode(code, here="/", tmpdir=bundle)
    assert elsewhere.relative("/tmp/run-a/staticx-Ab12/_internal/app.py") == "app.py"
    assert elsewhere.relative("/tmp/run-a/staticx-Ab12/app.py") == "app.py"
    # Not the function's own: the standard library, a dependency, the runtime, tools.
    for other in (
        "/usr/lib/python3.11/json/__init__.py",
        "<frozen importlib._bootstrap>",
        "importlib/__init__.py",
        "/tmp/run-a/staticx-Ab12/_internal/aws_lambda_powertools/logging/logger.py",
        "/tmp/run-a/staticx-Ab12/_internal/runtime/loop.py",
        str(code / ".venv" / "lib" / "tool.py"),
        str(code / "missing.py"),
    ):
        assert a.relative(other) is None, other
        assert b.relative(other) is None, other


def test_a_stack_trace_keeps_the_own_frames_file_line_function_and_source(code: Path) -> None:
    own = OwnCode(code, here=str(code))
    trace = [
        '  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module\n'
        "    return _bootstrap._gcd_import(name[level:], package, level)\n",
        '  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import\n',
        f'  File "{code}/app.py", line 12, in handler\n    return check(event)\n',
        '  File "orders/check.py", line 3, in check\n',
    ]
    assert own.stack_trace(trace) == [
        str(Frame("app.py", 12, "handler", "return check(event)")),
        'File "orders/check.py", line 3, in check: (no source line)',
    ]
    assert own.stack_trace(None) == []
    assert own.stack_trace(["not a frame"]) == ["(not a frame: 'not a frame')"]


def test_a_logged_traceback_keeps_its_own_frames_in_place(code: Path) -> None:
    own = OwnCode(code, here=str(code))
    lines = [
        "[ERROR] ValueError: boom",
        "Traceback (most recent call last):",
        '\xa0\xa0File "/usr/lib/python3.11/json/__init__.py", line 346, in loads',
        "\xa0\xa0\xa0\xa0return _default_decoder.decode(s)",
        f'\xa0\xa0File "{code}/app.py", line 35, in handler',
        '\xa0\xa0\xa0\xa0raise ValueError("boom")',
        f'  File "{code}/app.py", line 36, in handler',  # no source line: the next is a frame
        f'  File "{code}/orders/check.py", line 2, in check',
        "after",
    ]
    assert own.traceback_lines(lines) == [
        "[ERROR] ValueError: boom",
        "Traceback (most recent call last):",
        '\xa0\xa0File "app.py", line 35, in handler: raise ValueError("boom")',
        '  File "app.py", line 36, in handler: (no source line)',
        '  File "orders/check.py", line 2, in check: (no source line)',
        "after",
    ]


def test_a_run_is_observed_with_placeholders_and_without_the_emulator(
    code: Path, tmp_path: Path
) -> None:
    log = EMULATOR_LOG.replace("{code}", str(code)).replace("{tmp}", str(tmp_path))
    function, platform = split_log(log)
    assert function[0] == "cold start at 2026-12-03T20:02:36.300Z"
    assert platform[0] == "START RequestId: 2029ffdf-4b90 Version: $LATEST"
    assert len(platform) == 3 and not any("(rapid)" in line for line in function)

    where = places(log, OwnCode(code, here=str(code)), [str(code)], str(tmp_path))
    now_ms = int(time.time() * 1000)
    body = (
        f'{{"request": "2029ffdf-4b90", "file": "{code}/data.txt", "at": {now_ms}, '
        f'"when": "2026-12-03 20:02:37,201+0000", "n": 1700, "flag": true}}'
    ).encode()
    seen = observe(200, body, log, where)
    assert seen.init == "success" and seen.status == 200
    assert seen.reply == {
        "request": "<request id>",
        "file": "<task root>/data.txt",
        "at": "<time>",
        "when": "<time>",
        "n": 1700,
        "flag": True,
    }
    assert seen.log == (
        "cold start at <time>",
        "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
        '\xa0\xa0File "app.py", line 35, in handler: raise ValueError("boom")',
        # The function's line the emulator's next line ran into, without it.
        "took <n> ms for <request id> in <tmp>/scratch",
    )
    assert seen.platform[2] == (
        "REPORT RequestId: <request id>\tInit Duration: <n> ms\tDuration: <n> ms\t"
        "Billed Duration: <n> ms\tMemory Size: <n> MB\tMax Memory Used: <n> MB\t"
    )


def test_an_error_reply_is_its_type_message_and_own_frames(code: Path) -> None:
    where = places("", OwnCode(code, here=str(code)), [str(code)], "")
    body = (
        '{"errorMessage": "cannot take order 7", "errorType": "ValueError", '
        '"requestId": "anything", "stackTrace": ['
        f'"  File \\"{code}/app.py\\", line 9, in handler\\n    check(7)\\n", '
        '"  File \\"/opt/lib/helper.py\\", line 2, in run\\n"]}'
    ).encode()
    assert observe(200, body, "", where).reply == {
        "errorType": "ValueError",
        "errorMessage": "cannot take order 7",
        "stackTrace": ['File "app.py", line 9, in handler: check(7)'],
    }
    assert observe(200, b"not json", "", where).reply == {"(not JSON)": "not json"}


def test_a_json_log_record_is_compared_as_an_object(code: Path) -> None:
    where = places("START RequestId: r-1 Version", OwnCode(code), [str(code)], "")
    line = (
        '{"timestamp": "2026-12-03T20:02:37Z", "level": "ERROR", "message": "failed", '
        '"requestId": "r-1", "stackTrace": ["  File \\"/usr/lib/x.py\\", line 1, in f\\n"]}'
    )
    seen = observe(200, b"null", f"START RequestId: r-1 Version\n{line}\n", where)
    assert seen.log == (
        {
            "timestamp": "<time>",
            "level": "ERROR",
            "message": "failed",
            "requestId": "<request id>",
            "stackTrace": [],
        },
    )
