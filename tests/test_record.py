"""The build record (build/record.py): `make zip` zips what was built, and rebuilds
first only for a reason it can name. Unit tests on a stand-in bootstrap: the record
never reads the binary's contents, only its hash."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from build.function_env import digest
from build.record import (
    RECORD,
    Inputs,
    environment_changed,
    fingerprint,
    read_inputs,
    read_record,
    rebuild_reason,
    recorded_inputs,
    write_record,
    write_request,
)


def built(dist: Path, inputs: Inputs) -> dict[str, object]:
    """dist/bootstrap (a stand-in) and its record, read back."""
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "bootstrap").write_bytes(b"\x7fELF stand-in")
    write_record(dist, inputs, "x86_64")
    record = read_record(dist)
    assert record is not None
    return record


def test_no_bootstrap_is_a_reason_to_build(tmp_path: Path) -> None:
    assert read_record(tmp_path) is None
    assert rebuild_reason(tmp_path, None, Inputs(), Inputs()) == "no bootstrap was built"


def test_a_bootstrap_its_record_does_not_describe_is_rebuilt(tmp_path: Path) -> None:
    built(tmp_path, Inputs())
    (tmp_path / "bootstrap").write_bytes(b"\x7fELF another build")
    assert read_record(tmp_path) is None
    assert rebuild_reason(tmp_path, None, Inputs(), Inputs()) == (
        f"{tmp_path / 'bootstrap'} is not the one its record describes"
    )


def test_a_record_that_is_not_json_describes_nothing(tmp_path: Path) -> None:
    built(tmp_path, Inputs())
    (tmp_path / RECORD).write_text("{ not json")
    assert read_record(tmp_path) is None


def test_the_same_inputs_zip_what_was_built(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "app.py").write_text("def handler(event, context):\n    return 1\n")
    inputs = Inputs(handler="app.handler", src=str(src), excludes=("*.md",), add_data=())
    record = built(tmp_path / "dist", inputs)
    assert record["architecture"] == "x86_64"
    recorded = recorded_inputs(record)
    assert recorded == inputs  # lists in the JSON come back as the tuples they were
    assert rebuild_reason(tmp_path / "dist", record, recorded, recorded) is None


def test_an_input_given_that_differs_is_named(tmp_path: Path) -> None:
    record = built(tmp_path, Inputs())
    recorded = recorded_inputs(record)
    wanted = replace(recorded, handler="app.handler", init_check=False)
    assert rebuild_reason(tmp_path, record, recorded, wanted) == (
        "handler, init_check differ from the last build's"
    )


def test_a_changed_file_of_a_recorded_input_is_a_reason_to_build(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "app.py").write_text("def handler(event, context):\n    return 'v1'\n")
    record = built(tmp_path / "dist", Inputs(handler="app.handler", src=str(src)))
    recorded = recorded_inputs(record)
    (src / "app.py").write_text("def handler(event, context):\n    return 'v2'\n")
    assert rebuild_reason(tmp_path / "dist", record, recorded, recorded) == (
        "files of the last build's inputs changed"
    )


def test_the_record_is_what_make_deploy_reads(tmp_path: Path) -> None:
    built(tmp_path, Inputs(arch="arm64"))
    on_disk = json.loads((tmp_path / RECORD).read_text())
    assert on_disk["architecture"] == "x86_64"
    assert on_disk["inputs"]["arch"] == "arm64"
    assert set(on_disk) == {
        "architecture",
        "inputs",
        "fingerprint",
        "environment_sha256",
        "bootstrap_sha256",
    }


def test_a_build_that_did_not_finish_leaves_what_it_was_asked(tmp_path: Path) -> None:
    asked = Inputs(handler="app.handler", src="/work/fn", env_file="/work/fn.env")
    write_request(tmp_path, asked)
    assert read_record(tmp_path) is None  # it describes no bootstrap
    assert read_inputs(tmp_path) == (asked, False)
    reason = rebuild_reason(tmp_path, None, asked, asked)
    assert reason == (
        "the last build asked for (HANDLER=app.handler SRC=/work/fn ENV_FILE=/work/fn.env) "
        "did not finish"
    )
    assert read_inputs(tmp_path / "never-built") is None


def test_the_environment_is_outside_the_fingerprint_and_hashed_apart(tmp_path: Path) -> None:
    inputs = Inputs(handler="app.handler")
    with_env = replace(inputs, env_file="/work/fn.env", env="TABLE_NAME=cars")
    # The environment changes no byte of the binary: not a reason to build again.
    assert fingerprint(with_env) == fingerprint(inputs)
    record = built(tmp_path, inputs)
    assert rebuild_reason(tmp_path, record, recorded_inputs(record), with_env) is None
    # It is the init check's input: the record keeps its hash (ENV's words are an input
    # as given; ENV_FILE's values stay in the file).
    dist = tmp_path / "with-env"
    dist.mkdir()
    (dist / "bootstrap").write_bytes(b"\x7fELF stand-in")
    write_record(dist, with_env, "x86_64", digest({"TABLE_NAME": "cars"}))
    record = read_record(dist)
    assert record is not None and record["environment_sha256"] == digest({"TABLE_NAME": "cars"})
    assert not environment_changed(record, digest({"TABLE_NAME": "cars"}))
    assert environment_changed(record, digest({"TABLE_NAME": "trucks"}))
    assert environment_changed(record, digest(None))
