"""The function's code folder, as on AWS's Python runtime: the working directory
and LAMBDA_TASK_ROOT are the folder holding the function's files (/var/task on
Lambda), its `.py` sources among them, so code that opens `prompt.txt` at
import or lists its own sources runs unchanged.

The static bootstrap built from tests/fixtures/apifunc beside awslambdaric on
the same folder, both under the official emulator (tests/side_by_side.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from side_by_side import APIFUNC, TASK_ROOT, Runtime

from runtime.frozen import enter_code_folder

TEMPLATE = (APIFUNC / "prompt_template.txt").read_text()


@pytest.mark.rie
def test_a_template_opened_relative_to_the_working_directory_at_import_and_in_the_handler(
    side_by_side: tuple[Runtime, Runtime],
) -> None:
    ours, theirs = (runtime.invoke({"action": "files"})[0] for runtime in side_by_side)
    assert ours.status == 200, ours.log
    assert ours.body == {
        "cwd": TASK_ROOT,
        "task_root": TASK_ROOT,
        "file": f"{TASK_ROOT}/app.py",
        "at_import": TEMPLATE,
        "from_task_root": TEMPLATE,
        "from_cwd": TEMPLATE,
    }
    assert ours.body == theirs.body
    # The bootstrap's own tree (PyInstaller's, in staticx's extraction in
    # TMPDIR), not the bootstrap's folder Lambda names, which holds only `bootstrap`.
    assert ours.task_root.endswith("/_internal") and "/staticx-" in ours.task_root


@pytest.mark.rie
def test_powertools_finds_and_loads_the_functions_own_sources_at_import(
    side_by_side: tuple[Runtime, Runtime],
) -> None:
    # configure_openapi_merge globs ./services for handler.py, parses each one
    # and loads it by path; the merged schema has both services' routes.
    ours, theirs = (runtime.invoke({"action": "openapi"})[0] for runtime in side_by_side)
    assert ours.status == 200, ours.log
    assert ours.body == {"title": "Shop", "paths": ["/orders", "/users/{user_id}"]}
    assert ours.body == theirs.body


# --- in-process: the start-up step itself --------------------------------------------


def test_from_source_the_working_directory_and_task_root_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delattr("sys._MEIPASS", raising=False)
    environ = {"LAMBDA_TASK_ROOT": "/var/task"}
    assert enter_code_folder(environ) is None
    assert os.getcwd() == str(tmp_path)
    assert environ == {"LAMBDA_TASK_ROOT": "/var/task"}


def test_frozen_the_tree_becomes_the_working_directory_and_task_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "staticx-x" / "_internal"
    tree.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys._MEIPASS", str(tree), raising=False)
    environ = {"LAMBDA_TASK_ROOT": "/var/task"}  # Lambda's: the bootstrap's folder
    assert enter_code_folder(environ) == str(tree)
    assert os.getcwd() == str(tree)
    assert environ == {"LAMBDA_TASK_ROOT": str(tree)}
