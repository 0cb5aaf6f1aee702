"""What `make compare` is given, read before anything runs: EVENTS (a file, or a folder's
.json files in name order, each JSON), the function's variables (the build's, or
ENV_FILE and ENV), and the build it compares (it must be there and current). Each
mistake is one line on stderr and exit status 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from build.compare.cli import built, function_variables, here, main
from build.compare.events import read_events
from build.compare.sides import DEV_PINS, RUNTIME_DISTRIBUTIONS, pinned
from build.errors import BuildError, CompareError
from build.function_env import write_environment
from build.package import file_sha256
from build.paths import ROOT
from build.record import RECORD


def test_a_folder_of_events_is_run_in_name_order(tmp_path: Path) -> None:
    for name, body in (("b.json", "[1]"), ("a.json", '{"x": 1}'), ("10.json", "null")):
        (tmp_path / name).write_text(body)
    (tmp_path / "notes.txt").write_text("not an event")
    (tmp_path / "sub.json").mkdir()
    events = read_events(str(tmp_path))
    assert [(e.name, e.body) for e in events] == [
        ("10.json", b"null"),
        ("a.json", b'{"x": 1}'),
        ("b.json", b"[1]"),
    ]


def test_one_event_file_is_one_event(tmp_path: Path) -> None:
    event = tmp_path / "order.event"
    event.write_text('{"order": 1}')
    [only] = read_events(str(event))
    assert (only.name, only.body) == ("order.event", b'{"order": 1}')


@pytest.mark.parametrize(
    ("files", "given", "message"),
    [
        ({}, "", "give EVENTS=path: an event file, or a folder of .json files"),
        ({}, "missing", "EVENTS={tmp}/missing does not exist"),
        ({"a.txt": "{}"}, ".", "EVENTS={tmp} holds no .json file: put one event in each"),
        ({"a.json": "{'single': 1}"}, "a.json", "EVENTS: {tmp}/a.json is not JSON (Expecting"),
        ({"a.json": b'{"a": "\xc3\x28"}'}, "a.json", "EVENTS: {tmp}/a.json is not UTF-8 JSON"),
    ],
)
def test_events_a_user_can_get_wrong_are_one_line(
    tmp_path: Path, files: dict[str, str | bytes], given: str, message: str
) -> None:
    for name, body in files.items():
        path = tmp_path / name
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(CompareError) as raised:
        read_events(str(tmp_path / given) if given else "")
    assert str(raised.value).startswith(message.replace("{tmp}", str(tmp_path)))
    assert "\n" not in str(raised.value)


def test_the_functions_variables_are_the_builds_unless_given(tmp_path: Path) -> None:
    """As `make invoke`: what the build declared (bootstrap.environment.json); ENV_FILE/ENV
    given to compare itself instead, read by the build's own parser (its rules, its
    one-line errors: build/function_env.py)."""
    assert function_variables(tmp_path, "", "") == {}  # the build declared none
    write_environment(tmp_path, {"TABLE_NAME": "orders", "STAGE": "dev"})
    assert function_variables(tmp_path, "", "") == {"TABLE_NAME": "orders", "STAGE": "dev"}
    env_file = tmp_path / "dev.env"
    env_file.write_text("export STAGE = 'test' # a comment\nLEVEL=info\n")
    assert function_variables(tmp_path, str(env_file), "LEVEL=debug") == {
        "STAGE": "test",
        "LEVEL": "debug",  # ENV wins
    }
    with pytest.raises(BuildError, match="AWS_LAMBDA_LOG_FORMAT is set by Lambda itself"):
        function_variables(tmp_path, "", "AWS_LAMBDA_LOG_FORMAT=JSON")  # LOG_FORMAT= is


def test_the_runtimes_own_packages_are_pinned_by_hash() -> None:
    pins = pinned(DEV_PINS.read_text(), RUNTIME_DISTRIBUTIONS)
    assert pins.startswith("awslambdaric==4.2.2 \\\n    --hash=sha256:")
    assert [line.split("==")[0] for line in pins.splitlines() if "==" in line] == list(
        RUNTIME_DISTRIBUTIONS
    )
    assert "# via" not in pins
    with pytest.raises(CompareError, match="pins no nothing-such"):
        pinned(DEV_PINS.read_text(), ("nothing-such",))


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_without_a_build_it_says_to_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "e.json").write_text("{}")
    status, _, err = run_main(capsys, "--events", str(tmp_path / "e.json"), "--dist", str(tmp_path))
    assert status == 1
    assert err == (
        f"compare: no bootstrap built in {tmp_path} (or not the one its record describes): "
        "run `make compare`, which builds it, or `make zip` first\n"
    )


def test_an_out_of_date_build_is_refused_unless_make_just_brought_it_up_to_date(
    echo_dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record of a build whose inputs' files changed since (its fingerprint), made
    in the container (BUILDER=docker), which sees the repository at /src."""
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copy2(echo_dist / "bootstrap", dist / "bootstrap")
    record = json.loads((echo_dist / RECORD).read_text())
    assert record["bootstrap_sha256"] == file_sha256(dist / "bootstrap")
    src = "/src/tests/fixtures/comparefunc"
    record["inputs"].update(src=src, requirements=f"{src}/requirements.txt")
    (dist / RECORD).write_text(json.dumps({**record, "fingerprint": "the container's"}))
    (tmp_path / "e.json").write_text("{}")
    status, _, err = run_main(capsys, "--events", str(tmp_path / "e.json"), "--dist", str(dist))
    assert status == 1
    assert err == (
        f"compare: {dist / 'bootstrap'} is out of date (files of the last build's inputs "
        "changed): `make compare` rebuilds it\n"
    )
    inputs = built(dist, up_to_date=True)
    assert inputs.src == str(ROOT / "tests" / "fixtures" / "comparefunc")
    assert inputs.requirements == str(
        ROOT / "tests" / "fixtures" / "comparefunc" / "requirements.txt"
    )
    assert here("/src/no/such/file") == str(ROOT / "no" / "such" / "file")
    assert here(str(tmp_path)) == str(tmp_path)  # a path that is here stays as it is


def test_events_are_checked_before_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_main(capsys, "--events", str(tmp_path / "none"), "--dist", str(tmp_path))
    assert (status, err) == (1, f"compare: EVENTS={tmp_path / 'none'} does not exist\n")
    (tmp_path / "e.json").write_text("{}")
    status, _, err = run_main(
        capsys, "--events", str(tmp_path), "--dist", str(tmp_path), "--log-format", "YAML"
    )
    assert (status, err) == (1, "compare: LOG_FORMAT=YAML is neither Text nor JSON\n")


def test_help_is_the_commands_docstring(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m build.compare")
    assert "Exit status 0 only when every event is the same." in out
