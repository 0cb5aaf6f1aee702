"""The Managed Instances bench (build/bench/managed.py) on the runtime from
source: its Runtime API serves concurrent /next, and one run measures the
whole process tree. No number is asserted beyond what a run must produce."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support import ROOT

from build import bench
from build.bench.candidates import Candidate
from build.bench.managed import Row, Sample, run_once, table

SOURCE = Candidate(
    "A", "runtime from source", (sys.executable, "-m", "runtime", "handlers.echo.handler"), ROOT
)


def test_one_run_measures_the_parent_and_every_worker(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    sample = run_once(SOURCE, 3, env, tmp_path)
    assert sample.processes == 4  # the parent and three workers
    assert 0 < sample.pss_mb <= sample.rss_mb
    assert sample.ready_ms > 0
    assert os.listdir(tmp_path) == []


def test_unset_is_one_process(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    assert run_once(SOURCE, None, env, tmp_path).processes == 1


def test_table_gives_a_over_b() -> None:
    b = Candidate("B", "other", ("true",), ROOT)
    rows = [
        Row(SOURCE, 8, [Sample(10, 1.0, 50.0, 60.0, 9)]),
        Row(b, 8, [Sample(20, 2.0, 100.0, 90.0, 9)]),
    ]
    lines = table(rows)
    assert "| 8 | A runtime from source | 9 | 10 | 1.00 | 50.0 | 60.0 |" in lines
    assert "- workers 8: A/B Σ PSS 0.50x, init CPU 0.50x, ready 0.50x" in lines


@pytest.mark.parametrize(
    "args", [["--managed-only"], ["--boto3-powertools"], ["--managed-instances", "1"]]
)
def test_managed_options_need_managed_instances_of_two_or_more(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.main(args)
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("python -m build.bench: error: --") and "--managed-instances" in error


@pytest.mark.binary
def test_managed_only_prints_and_records_the_managed_rows_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, echo_dist: Path
) -> None:
    out = tmp_path / "bench.json"
    managed = ["--managed-instances", "2", "--managed-only", "--managed-rounds", "1"]
    status = bench.main([*managed, "--bootstrap", str(echo_dist / "bootstrap"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "staticlambda bench" not in printed  # none of bench's own rows
    assert "## Lambda Managed Instances: handlers.echo.handler" in printed
    assert "| 2 | A static bootstrap | 4 |" in printed  # its loader, the parent, two workers
    rows = json.loads(out.read_text())["managed_instances"]
    assert [(r["label"], r["workers"]) for r in rows] == [
        ("A", None),
        ("B", None),
        ("A", 2),
        ("B", 2),
        ("C", 2),
    ]
    assert all(len(r["samples"]) == 1 for r in rows)
