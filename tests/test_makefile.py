"""The Makefile: `make` alone helps, and every variable reaches its command as
data. Each target runs for real with a `python` and a `docker` that only record
their arguments (tests/makefile_support.py), with values an attacker would
choose: quotes, `$`, backticks, `$(shell ...)`, newlines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from makefile_support import ROOT, recorded_make

HOSTILE = (
    "x'; touch PWNED1; echo '\"$HOME `touch PWNED2` $(shell touch PWNED3) $$(touch PWNED4)\nnext"
)
TARGETS = (
    "build",
    "zip",
    "invoke",
    "deploy",
    "remote-invoke",
    "bench",
    "compare",
    "clean",
    "wheel",
    "help",
)


@pytest.fixture(autouse=True)
def planted_files_removed() -> Iterator[None]:
    """What a shell run by mistake plants in the repository goes with the test that made it
    run, passed or failed: left behind, it failed every later run of every test here."""
    yield
    planted = sorted(ROOT.glob("PWNED*"))
    for path in planted:
        path.unlink()
    if planted:
        pytest.fail(f"a shell ran: {[p.name for p in planted]} in {ROOT} (removed)")


def no_side_effects(*folders: Path) -> None:
    for folder in (ROOT, *folders):
        planted = [p.name for p in folder.glob("PWNED*")]
        assert not planted, f"a shell ran: {planted} in {folder}"


def values(argv: list[str], option: str) -> list[str]:
    return [a.split("=", 1)[1] for a in argv if a.startswith(option + "=")]


def python_call(calls: list[list[str]], module: str) -> list[str]:
    (call,) = [c for c in calls if c[0] == "python" and module in c]
    return call


def test_make_alone_prints_the_help_with_every_target() -> None:
    ran = subprocess.run(
        ["make", "--no-print-directory"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert ran.stdout.startswith("make zip ")
    listed = set(re.findall(r"^make ([a-z-]+)", ran.stdout, re.M))
    assert set(TARGETS) | {"test", "check"} <= listed
    assert "==>" not in ran.stdout, "make alone must not build"


@pytest.mark.parametrize("builder", ["native", "docker"])
def test_build_and_zip_pass_values_as_data(builder: str, tmp_path: Path) -> None:
    for target in ("build", "zip"):
        calls, _ = recorded_make(
            tmp_path / target,
            target,
            f"BUILDER={builder}",
            f"HANDLER={HOSTILE}",
            f"EXCLUDE={HOSTILE}",
            f"ADD_DATA={HOSTILE}",
            f"ONLY_BINARY={HOSTILE}",
            f"INIT_CHECK={HOSTILE}",
            f"ENV={HOSTILE}",
            f"DIST={tmp_path / 'dist'}",
        )
        if builder == "native":
            argv = python_call(calls, "build.pipeline")
        else:
            (argv,) = [c for c in calls if c[:2] == ["docker", "run"]]
        options = ("--handler", "--exclude", "--add-data", "--only-binary", "--init-check", "--env")
        for option in options:
            assert values(argv, option) == [HOSTILE], (target, option, argv)
    no_side_effects(tmp_path)


def test_src_and_requirements_with_quotes_reach_the_pipeline_whole(tmp_path: Path) -> None:
    calls, _ = recorded_make(
        tmp_path,
        "build",
        "BUILDER=native",
        f"SRC={HOSTILE}",
        f"REQUIREMENTS={HOSTILE}",
        f"ENV_FILE={HOSTILE}",
    )
    argv = python_call(calls, "build.pipeline")
    assert values(argv, "--src") == [HOSTILE]
    assert values(argv, "--requirements") == [HOSTILE]
    assert values(argv, "--env-file") == [HOSTILE]
    no_side_effects(tmp_path)


def test_invoke_passes_event_and_names_as_data(tmp_path: Path) -> None:
    calls, _ = recorded_make(
        tmp_path,
        "invoke",
        "BUILDER=native",
        f"EVENT={HOSTILE}",
        f"EVENT_FILE={HOSTILE}",
        f"PASS_ENV={HOSTILE}",
        f"DIST={HOSTILE}",
        f"HANDLER={HOSTILE}",
        f"ENV_FILE={HOSTILE}",
        f"ENV={HOSTILE}",
        "AWS_CREDENTIALS=0",
        "INIT_TRACE=1",
    )
    # First dist/bootstrap as asked (rebuilt when `make zip` would), with what was given.
    assert next(c[:4] for c in calls if c[0] == "python") == [
        "python",
        "-m",
        "build.pipeline",
        "bootstrap",
    ]
    built = python_call(calls, "build.pipeline")
    for option in ("--handler", "--env-file", "--env", "--dist"):
        assert values(built, option) == [HOSTILE], option
    argv = python_call(calls, "build.invoke")
    assert values(argv, "--event") == [HOSTILE]
    assert values(argv, "--event-file") == [HOSTILE]
    assert values(argv, "--pass-env") == [HOSTILE]
    assert values(argv, "--bootstrap") == [HOSTILE + "/bootstrap"]
    assert "--credentials" not in argv and "--init-trace" in argv
    no_side_effects(tmp_path)


def test_deploy_and_remote_invoke_pass_names_as_data(tmp_path: Path) -> None:
    names = ("FUNCTION", "ROLE", "RUNTIME", "ARCH", "REGION", "MEMORY", "TIMEOUT", "ENV")
    calls, _ = recorded_make(
        tmp_path / "deploy",
        "deploy",
        *(f"{n}={HOSTILE}" for n in names),
        f"ENV_FILE={HOSTILE}",
        "CREATE_ROLE=1",
        "DRY_RUN=0",
        f"FORCE={HOSTILE}",
        f"DIST={HOSTILE}",
    )
    argv = python_call(calls, "build.deploy")
    for name in names:
        assert values(argv, f"--{name.lower()}") == [HOSTILE], name
    assert values(argv, "--env-file") == [HOSTILE]
    assert values(argv, "--zip") == [HOSTILE + "/function.zip"]
    assert "--create-role" in argv and "--dry-run" not in argv and "--force" in argv
    calls, _ = recorded_make(tmp_path / "unforced", "deploy", "FUNCTION=f", "FORCE=0")
    assert "--force" not in python_call(calls, "build.deploy")
    calls, _ = recorded_make(
        tmp_path / "remote",
        "remote-invoke",
        f"FUNCTION={HOSTILE}",
        f"REGION={HOSTILE}",
        f"EVENT={HOSTILE}",
    )
    argv = python_call(calls, "build.remote_invoke")
    for option in ("--function", "--region", "--event"):
        assert values(argv, option) == [HOSTILE], option
    no_side_effects(tmp_path)


@pytest.mark.parametrize("builder", ["native", "docker"])
def test_compare_builds_as_zip_then_passes_its_values_as_data(builder: str, tmp_path: Path) -> None:
    calls, _ = recorded_make(
        tmp_path,
        "compare",
        f"BUILDER={builder}",
        f"HANDLER={HOSTILE}",
        *(f"{n}={HOSTILE}" for n in ("EVENTS", "ENV_FILE", "ENV", "LOG_FORMAT", "REPORT")),
        f"DIST={tmp_path / 'dist'}",
    )
    if builder == "native":
        built = python_call(calls, "build.pipeline")
    else:
        (built,) = [c for c in calls if c[:2] == ["docker", "run"]]
    # First dist/bootstrap as asked (make invoke's step), given the function's environment.
    assert built[built.index("build.pipeline") + 1] == "bootstrap"
    assert values(built, "--handler") == [HOSTILE] and values(built, "--env") == [HOSTILE]
    argv = python_call(calls, "build.compare")
    assert calls.index(argv) > calls.index(built), "compare runs after the build step"
    for option in ("--events", "--log-format", "--json"):
        assert values(argv, option) == [HOSTILE], option
    # The environment reaches compare through the build (bootstrap.environment.json).
    assert values(argv, "--env-file") == values(argv, "--env") == []
    assert values(argv, "--dist") == [str(tmp_path / "dist")]
    assert "--up-to-date" in argv  # the build step before it checked what was built
    no_side_effects(tmp_path)


def test_compare_without_events_says_so_before_building(tmp_path: Path) -> None:
    ran = subprocess.run(
        ["make", "--no-print-directory", "compare", "BUILDER=native", "EVENTS= "],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 2
    assert "compare: give EVENTS=path: an event file, or a folder of .json files" in ran.stderr
    assert ran.stdout == "" and "==>" not in ran.stderr


def test_bench_args_are_words_never_code(tmp_path: Path) -> None:
    calls, _ = recorded_make(
        tmp_path, "bench", "BENCH_ARGS=--cold 3 * $(touch PWNED5) `touch PWNED6`", f"DIST={HOSTILE}"
    )
    argv = python_call(calls, "build.bench")
    assert argv[argv.index("--cold") :] == [
        "--cold",
        "3",
        "*",
        "$(touch",
        "PWNED5)",
        "`touch",
        "PWNED6`",
    ]
    assert values(argv, "--bootstrap") == [HOSTILE + "/bootstrap"]
    no_side_effects(tmp_path)


def test_clean_removes_only_what_a_build_writes(tmp_path: Path) -> None:
    dist = tmp_path / "it's $HOME"
    dist.mkdir()
    built = ("bootstrap", "bootstrap.handler", "bootstrap.inputs.json", "function.zip")
    built += ("bootstrap.environment.json", "function.zip.sha256")
    for name in (*built, "mine"):
        (dist / name).write_text("x")
    recorded_make(tmp_path, "clean", f"DIST={dist}")
    assert [p.name for p in dist.iterdir()] == ["mine"]
    recorded_make(tmp_path / "again", "clean", f"DIST={HOSTILE}")
    no_side_effects(tmp_path)


def test_wheel_is_the_runtime_library_and_leaves_the_tree_as_it_was(tmp_path: Path) -> None:
    """For real: pip runs the hatchling backend of pyproject.toml (the way that
    works here, where `python -m build` finds the pipeline's build/ package)."""
    dist = tmp_path / "it's $HOME"
    status = ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"]
    before = subprocess.run(status, cwd=ROOT, capture_output=True, text=True, check=False)
    ran = subprocess.run(
        ["make", "--no-print-directory", "wheel", f"DIST={dist}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [wheel] = dist.glob("staticlambda-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        tops = {name.split("/", 1)[0] for name in z.namelist()}
        assert "runtime/client.py" in z.namelist() and "handlers/echo.py" in z.namelist()
    assert tops - {"runtime", "handlers"} == {wheel.name.split("-py3")[0] + ".dist-info"}
    after = subprocess.run(status, cwd=ROOT, capture_output=True, text=True, check=False)
    assert after.stdout == before.stdout  # nothing written in the repository


def test_wheel_dist_reaches_pip_as_data(tmp_path: Path) -> None:
    calls, _ = recorded_make(tmp_path, "wheel", f"DIST={HOSTILE}")
    argv = python_call(calls, "pip")
    assert argv[1:] == ["-m", "pip", "wheel", ".", "--no-deps", "--wheel-dir", HOSTILE]
    no_side_effects(tmp_path)


# Run by the test below in a pytest of its own: the recipe's shell "runs" and the test fails.
SABOTAGE = """
import makefile_support

def pytest_configure(config):
    def planted_then_failed(*args, **kwargs):
        (makefile_support.ROOT / "PWNED-by-a-failing-test").touch()
        raise AssertionError("the recipe ran a shell")

    makefile_support.recorded_make = planted_then_failed
"""


def test_a_failing_test_leaves_nothing_planted_in_the_repository(tmp_path: Path) -> None:
    (tmp_path / "sabotage.py").write_text(SABOTAGE)
    planted = ROOT / "PWNED-by-a-failing-test"
    test = "tests/test_makefile.py::test_bench_args_are_words_never_code"
    try:
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "sabotage",
                "-p",
                "no:cacheprovider",
                test,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'tests'}"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "AssertionError: the recipe ran a shell" in ran.stdout, ran.stdout + ran.stderr
        assert ran.returncode == 1
        assert not planted.exists()
    finally:
        planted.unlink(missing_ok=True)
