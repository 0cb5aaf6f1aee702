"""`make compare` on a built function with a requirement (aws-lambda-powertools), its own
events and ENV_FILE: each event a cold start of the static bootstrap and of awslambdaric
4.2.2 under the official emulator, over loopback only (AWS_EC2_METADATA_DISABLED=true,
no AWS call). One build (tests/fixtures/comparefunc, only_here.txt left out of the
bundle) serves every test here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, build

COMPAREFUNC = ROOT / "tests" / "fixtures" / "comparefunc"


@pytest.fixture(scope="module")
def compare_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(
        tmp_path_factory.mktemp("compare-dist"),
        "--handler",
        "app.handler",
        "--src",
        str(COMPAREFUNC),
        "--requirements",
        str(COMPAREFUNC / "requirements.txt"),
        "--exclude",
        "only_here.txt",
    )


def events(folder: Path, **bodies: dict[str, Any]) -> Path:
    """One event file per keyword: name.json."""
    folder.mkdir()
    for name, body in bodies.items():
        (folder / f"{name}.json").write_text(json.dumps(body))
    return folder


def compare(dist: Path, events_path: Path, report: Path, *options: str) -> tuple[int, str]:
    """`python -m build.compare`, as make runs it."""
    return run(
        sys.executable,
        "-m",
        "build.compare",
        f"--dist={dist}",
        f"--events={events_path}",
        f"--json={report}",
        *options,
    )


def run(*argv: str) -> tuple[int, str]:
    """A command from the repository, without the caller's AWS settings: its status, output."""
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def event_lines(output: str) -> dict[str, str]:
    """The line of each event: name -> its result."""
    found = {}
    for line in output.splitlines():
        name, colon, rest = line.partition(".json: ")
        if colon and not line.startswith(" "):
            found[name] = rest.split("  (INIT ")[0]
    return found


def test_a_function_that_matches_is_the_same_for_each_event(
    compare_dist: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "function.env"
    env_file.write_text("TABLE_NAME=orders\n")
    report = tmp_path / "report.json"
    status, output = compare(
        compare_dist,
        events(
            tmp_path / "events",
            dict={"order": "o-1", "nested": {"list": [1, 2.5, None]}},
            printed={"action": "print", "order": "o-3"},
            logged={"action": "log", "order": "o-4"},
            powertools={"action": "powertools", "order": "o-5"},
            found={"action": "find", "module": "pytest"},
        ),
        report,
        f"--env-file={env_file}",
    )
    assert status == 0, output
    assert event_lines(output) == dict.fromkeys(
        ("dict", "found", "logged", "powertools", "printed"), "same"
    )
    assert "summary: 5 of 5 events the same" in output
    written = json.loads(report.read_text())
    sides = {e["name"]: e["sides"] for e in written["events"]}
    for side in ("A", "B"):
        # ENV_FILE reached both; what each wrote is there, not merely equal.
        reply = json.loads(sides["dict.json"][side]["reply"])
        assert (reply["table"], reply["metadata_disabled"]) == ("orders", "true")
        assert sides["printed.json"][side]["observed"]["log"] == ["order o-3 received"]
        assert sides["logged.json"][side]["observed"]["log"] == [
            "[INFO]\t<time>\t<request id>\torder o-4 stored"
        ]
        [record] = sides["powertools.json"][side]["observed"]["log"]
        assert (record["message"], record["order_id"]) == ("order stored", "o-5")
        # Neither side sees this project's venv: awslambdaric runs on its own packages.
        assert json.loads(sides["found.json"][side]["reply"]) == {"found": False}
    assert written["variables"] == ["TABLE_NAME"]
    assert "INIT A " in output and " ms, B " in output


def test_a_json_log_record_is_the_same_under_the_json_log_format(
    compare_dist: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    status, output = compare(
        compare_dist,
        events(tmp_path / "events", logged={"action": "log", "order": "o-4"}),
        report,
        "--log-format=JSON",
    )
    assert status == 0, output
    assert event_lines(output) == {"logged": "same"}
    [event] = json.loads(report.read_text())["events"]
    for side in ("A", "B"):
        [record] = event["sides"][side]["observed"]["log"]
        assert record == {
            "timestamp": "<time>",
            "level": "INFO",
            "message": "order o-4 stored",
            "logger": "app",
            "requestId": "<request id>",
            "order_id": "o-4",
        }


def test_an_error_three_calls_deep_is_the_same(compare_dist: Path, tmp_path: Path) -> None:
    """Each frame of the function's own code: file, line, function and source line."""
    report = tmp_path / "report.json"
    status, output = compare(
        compare_dist,
        events(tmp_path / "events", deep={"action": "raise", "order": "o-2"}),
        report,
    )
    assert status == 0, output
    assert event_lines(output) == {"deep": "same"}
    [event] = json.loads(report.read_text())["events"]
    for side in ("A", "B"):
        reply = event["sides"][side]["observed"]["reply"]
        assert reply["errorType"] == "ValueError"
        assert reply["errorMessage"] == "cannot take order o-2"
        assert [frame.split(": ", 1)[0] for frame in reply["stackTrace"]] == [
            f'File "app.py", line {line}, in {function}'
            for line, function in (
                (line_of("return place("), "handler"),
                (line_of("    charge(order)"), "place"),
                (line_of("    check(order)"), "charge"),
                (line_of("    raise ValueError("), "check"),
            )
        ]
        assert reply["stackTrace"][-1].endswith(': raise ValueError(f"cannot take order {order}")')


def line_of(text: str) -> int:
    lines = (COMPAREFUNC / "app.py").read_text().splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if text in line]
    return number


def test_an_init_error_is_the_same_but_for_awslambdaric_s_warning(
    compare_dist: Path, tmp_path: Path
) -> None:
    """ENV gives the variable that fails the import; awslambdaric's LAMBDA_WARNING before
    the init error is a known difference, named."""
    report = tmp_path / "report.json"
    status, output = compare(
        compare_dist,
        events(tmp_path / "events", any={"order": "o-1"}),
        report,
        "--env=APP_FAIL_INIT=1",
    )
    assert status == 0, output
    assert event_lines(output) == {"any": "same but for known differences"}
    assert "    known: awslambdaric's LAMBDA_WARNING before an init error" in output
    assert "error, B " in output  # the INIT column says init failed
    [event] = json.loads(report.read_text())["events"]
    for side in ("A", "B"):
        observed = event["sides"][side]["observed"]
        assert observed["init"] == "error"
        assert observed["reply"]["errorMessage"] == "init failed on purpose"


def test_a_function_that_behaves_otherwise_is_named_with_its_difference(
    compare_dist: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    status, output = compare(
        compare_dist,
        events(
            tmp_path / "events",
            dict={"order": "o-1"},
            frozen={"action": "frozen"},
            read={"action": "read"},
        ),
        report,
    )
    assert status == 1, output
    assert event_lines(output) == {"dict": "same", "frozen": "differs", "read": "differs"}
    assert "\n    reply $.frozen: A true | B false\n" in output
    # only_here.txt is in the function's folder but not in the bundle.
    assert (
        '    reply: A error FileNotFoundError: "[Errno 2] No such file or directory: '
    ) in output
    assert ' | B {"text": "only in the function\'s folder, never bundled"}' in output
    assert "summary: 1 of 3 events the same, 2 differ: frozen.json, read.json" in output
    assert json.loads(report.read_text())["summary"]["differ"] == ["frozen.json", "read.json"]


def test_make_compare_builds_as_make_zip_decides_then_compares(
    compare_dist: Path, tmp_path: Path
) -> None:
    """The same inputs as the build: make's bootstrap step finds nothing to rebuild; ENV
    given reruns the init check alone, and both sides get the environment the build
    declared (bootstrap.environment.json), as `make invoke` does."""
    dist = tmp_path / "dist"
    shutil.copytree(compare_dist, dist)  # the other tests' build keeps no environment
    folder = events(tmp_path / "events", dict={"order": "o-1"})
    report = tmp_path / "report.json"
    status, output = run(
        "make",
        "--no-print-directory",
        "compare",
        "BUILDER=native",
        "HANDLER=app.handler",
        f"SRC={COMPAREFUNC}",
        f"REQUIREMENTS={COMPAREFUNC / 'requirements.txt'}",
        "EXCLUDE=only_here.txt",
        f"DIST={dist}",
        f"EVENTS={folder}",
        "ENV=TABLE_NAME=orders",
        f"REPORT={report}",
    )
    assert status == 0, output
    assert "bootstrap: the function's environment (ENV_FILE/ENV) changed" in output
    assert "==> freeze" not in output
    assert event_lines(output) == {"dict": "same"}
    assert "and TABLE_NAME" in output
    [event] = json.loads(report.read_text())["events"]
    for side in ("A", "B"):
        assert json.loads(event["sides"][side]["reply"])["table"] == "orders"
    # Again, nothing changed: the bootstrap as built, the same environment from the build.
    status, output = run(
        "make",
        "--no-print-directory",
        "compare",
        "BUILDER=native",
        f"DIST={dist}",
        f"EVENTS={folder}",
        f"REPORT={report}",
    )
    assert status == 0, output
    assert f"bootstrap: {dist / 'bootstrap'} as built (HANDLER=app.handler" in output
    [event] = json.loads(report.read_text())["events"]
    for side in ("A", "B"):
        assert json.loads(event["sides"][side]["reply"])["table"] == "orders"
