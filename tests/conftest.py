"""Fixtures shared by the whole suite, one section each; add yours in a section of its own."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_runtime_api import FakeRuntimeAPI
from side_by_side import APIFUNC, Runtime, awslambdaric, static_bootstrap
from support import APP, ORDERS, USERFUNC, WriteModule, build, build_function, debian_tool

# --- environment --------------------------------------------------------------
# Every test starts without what Lambda (or a developer's shell) puts in the
# environment, and whatever a test or the runtime sets (the runtime writes
# _X_AMZN_TRACE_ID itself) is undone after it.

LAMBDA_VARIABLES = ("_HANDLER", "_X_AMZN_TRACE_ID", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")


def is_lambda_variable(name: str) -> bool:
    """AWS_LAMBDA_*, AWS_* credentials and region, and Lambda's own `_` names."""
    return name.startswith(("AWS_", "_LAMBDA_")) or name in LAMBDA_VARIABLES


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    saved = os.environ.copy()
    for name in [n for n in os.environ if is_lambda_variable(n)]:
        del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


# --- the fake Runtime API -----------------------------------------------------
# One in-process fake per test (tests/fake_runtime_api.py), closed after it.


@pytest.fixture
def api() -> Iterator[FakeRuntimeAPI]:
    with FakeRuntimeAPI() as api:
        yield api


# --- built bootstraps ---------------------------------------------------------
# A static bootstrap takes minutes to build: one of the default echo handler and one
# of a user's function with requirements, each built and zipped once per run.


@pytest.fixture(scope="session")
def echo_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dist/ folder as `make zip` leaves it for the echo handler: bootstrap, function.zip."""
    return build(tmp_path_factory.mktemp("echo-dist"))


@pytest.fixture(scope="session")
def user_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same for a user's function (tests/fixtures/userfunc) with its requirements file."""
    return build_function(tmp_path_factory.mktemp("user-dist"), USERFUNC)


# --- a function written for AWS's Python runtime -------------------------------
# tests/fixtures/apifunc built as a static bootstrap, and the same folder as
# awslambdaric runs it (tests/side_by_side.py), each made once per run.


@pytest.fixture(scope="session")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runtime, Runtime]:
    """(the static bootstrap, awslambdaric) on tests/fixtures/apifunc."""
    from build.bench import install_for_awslambdaric

    dist = build_function(tmp_path_factory.mktemp("apifunc-dist"), APIFUNC)
    code = tmp_path_factory.mktemp("apifunc-task-root") / "task"
    shutil.copytree(APIFUNC, code)
    deps = install_for_awslambdaric(APIFUNC / "requirements.txt")
    return static_bootstrap(dist, tmp_path_factory.mktemp("apifunc-tmp")), awslambdaric(code, deps)


# --- the logging app ----------------------------------------------------------
# The user code of the log, X-Ray, soft-deadline and init-trace tests (its
# source is in support.py), written with write_module (below).


@pytest.fixture
def app(write_module: WriteModule) -> tuple[Path, Path]:
    """The logging app of support.py, written into tmp_path (the runtime's cwd): its two files."""
    return write_module("lambda_app", APP), write_module("lambda_orders", ORDERS)


# --- user code ----------------------------------------------------------------
# Handler modules written as real files into tmp_path, importable by name while
# the test runs; whatever was imported from them is forgotten after it.


@pytest.fixture
def write_module(tmp_path: Path) -> Iterator[WriteModule]:
    """``write_module("fn", source)`` writes tmp_path/fn.py; "dir/fn" writes a
    module in a directory. Returns the file's path."""
    root = str(tmp_path)
    sys.path.insert(0, root)

    def write(name: str, source: str) -> Path:
        path = tmp_path / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()  # a directory listed before this file existed
        return path

    yield write
    sys.path.remove(root)
    for name, module in list(sys.modules.items()):
        places = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
        if any(str(place).startswith(root) for place in places if place):
            del sys.modules[name]


# --- Debian tools -------------------------------------------------------------------
# Installed by the test set-up where it can be (support.debian_tool says how).


@pytest.fixture(scope="session")
def skopeo() -> str:
    return debian_tool("skopeo", "skopeo")
