"""What `make zip` and `make invoke` (build/pipeline.py's `zip` and `bootstrap`) decide
to do before they zip or run: build again, check init again, or nothing; and that they
act on what was asked, never on the default echo handler by accident.

The slow stages are stood in for where a test is about the decision alone (``builds``:
it records what would be built and leaves a stand-in bootstrap, as a build would); the
failing builds are real, and fail within a second at the checks before any stage.
tests/test_function_environment.py runs the same through `make`, with real builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_pipeline

from build import pipeline
from build.elf import host_architecture
from build.errors import BuildError
from build.function_env import declared, digest, write_environment
from build.paths import DEFAULT_HANDLER
from build.record import Inputs, read_inputs, write_record
from build.stages import build

APP = "def handler(event, context):\n    return 'v1'\n"
BROKEN = "def handler(event, context):\n    return {\n"  # a syntax error: fails at once


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Inputs]:
    """The builds and the init checks asked of the stages, in order; a stand-in
    bootstrap and its record appear as a finished build leaves them."""
    asked: list[Inputs] = []

    def build_inputs(wanted: Inputs, dist: Path) -> Path:
        asked.append(wanted)
        finished(dist, wanted)
        return dist / "bootstrap"

    def check_environment_again(
        wanted: Inputs, dist: Path, record: dict[str, object], check: bool = True
    ) -> Path:
        asked.append(wanted)
        environment = declared(wanted.env_file, wanted.env)
        write_environment(dist, environment)
        write_record(dist, wanted, str(record["architecture"]), digest(environment))
        return dist / "bootstrap"

    monkeypatch.setattr(pipeline, "build_inputs", build_inputs)
    monkeypatch.setattr(pipeline, "check_environment_again", check_environment_again)
    return asked


def finished(dist: Path, inputs: Inputs, arch: str = "x86_64") -> None:
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "bootstrap").write_bytes(b"\x7fELF stand-in for " + inputs.handler.encode())
    (dist / "bootstrap.handler").write_text(inputs.handler + "\n")
    environment = declared(inputs.env_file, inputs.env)
    write_environment(dist, environment)
    write_record(dist, inputs, arch, digest(environment))


def function(tmp_path: Path, source: str = APP) -> Path:
    folder = tmp_path / "fn"
    folder.mkdir(exist_ok=True)
    (folder / "app.py").write_text(source)
    return folder


def test_after_make_clean_zip_says_it_builds_the_default_echo_handler(
    tmp_path: Path, builds: list[Inputs], capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "dist"
    pipeline.zip_bootstrap(dist, {})
    assert builds == [Inputs()] and builds[0].handler == DEFAULT_HANDLER
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"zip: nothing was built in {dist} and no HANDLER was given: building the default echo "
        f"handler ({DEFAULT_HANDLER}); yours: HANDLER=module.function SRC=<its folder>"
    )
    assert (dist / "function.zip").is_file()


def test_a_failed_build_leaves_what_was_asked_and_zip_builds_that_again(
    tmp_path: Path, builds: list[Inputs], capsys: pytest.CaptureFixture[str]
) -> None:
    dist, src = tmp_path / "dist", function(tmp_path, BROKEN)
    finished(dist, Inputs())  # an echo build was there before
    with pytest.raises(BuildError, match=r"Runtime\.UserCodeSyntaxError"):
        build("app.handler", src, None, dist)  # real, and it fails at the syntax check
    assert not (dist / "bootstrap").exists(), "the old echo bootstrap stayed"
    assert read_inputs(dist) == (Inputs("app.handler", str(src), arch=host_architecture()), False)
    pipeline.zip_bootstrap(dist, {})
    assert [b.handler for b in builds] == ["app.handler"], "zip built another handler"
    assert "zip: building first: the last build asked for (HANDLER=app.handler" in (
        capsys.readouterr().out
    )


def test_a_plain_make_zip_after_a_failed_build_fails_as_that_build_did(tmp_path: Path) -> None:
    """As processes, unstubbed: the second command rebuilds the function asked for (and
    fails again at once), where it used to build and zip the echo handler, exit 0."""
    dist, src = tmp_path / "dist", function(tmp_path, BROKEN)
    failed = run_pipeline("build", "--handler=app.handler", f"--src={src}", f"--dist={dist}")
    assert failed.returncode == 1 and "Runtime.UserCodeSyntaxError" in failed.stderr
    again = run_pipeline("zip", f"--dist={dist}")
    assert again.returncode == 1, again.stdout
    assert "the last build asked for (HANDLER=app.handler" in again.stdout
    assert "Syntax error in module 'app'" in again.stderr
    assert not (dist / "function.zip").exists()


def test_bootstrap_builds_again_after_a_source_edit_as_zip_would(
    tmp_path: Path, builds: list[Inputs], capsys: pytest.CaptureFixture[str]
) -> None:
    dist, src = tmp_path / "dist", function(tmp_path)
    finished(dist, Inputs("app.handler", str(src)))
    pipeline.current_bootstrap(dist, {}, "bootstrap")
    assert builds == [] and "bootstrap: " in capsys.readouterr().out
    (src / "app.py").write_text(APP.replace("v1", "v2"))
    pipeline.current_bootstrap(dist, {}, "bootstrap")
    assert [b.handler for b in builds] == ["app.handler"]
    assert "bootstrap: building first: files of the last build's inputs changed" in (
        capsys.readouterr().out
    )


def test_only_the_environment_changed_checks_init_again_and_keeps_the_bootstrap(
    tmp_path: Path, builds: list[Inputs], capsys: pytest.CaptureFixture[str]
) -> None:
    dist, src = tmp_path / "dist", function(tmp_path)
    env_file = tmp_path / "fn.env"
    env_file.write_text("TABLE_NAME=cars\n")
    finished(dist, Inputs("app.handler", str(src), env_file=str(env_file)))
    bootstrap = (dist / "bootstrap").read_bytes()
    env_file.write_text("TABLE_NAME=trucks\n")
    pipeline.current_bootstrap(dist, {}, "bootstrap")
    assert len(builds) == 1 and builds[0].env_file == str(env_file)
    out = capsys.readouterr().out
    assert "bootstrap: the function's environment (ENV_FILE/ENV) changed: the init" in out
    assert "trucks" not in out and (dist / "bootstrap").read_bytes() == bootstrap
    # ENV given to zip: the same; its values never printed.
    pipeline.zip_bootstrap(dist, {"env": "API_KEY=k3y-Zq9"})
    assert builds[-1].env == "API_KEY=k3y-Zq9" and builds[-1].handler == "app.handler"
    assert "k3y-Zq9" not in capsys.readouterr().out


def test_an_arm64_bootstrap_whose_environment_changed_is_built_again(
    tmp_path: Path, builds: list[Inputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its init check runs in the arm64 build root, so the build is run there again."""
    monkeypatch.setattr(pipeline, "host_architecture", lambda: "x86_64")
    dist, src = tmp_path / "dist", function(tmp_path)
    finished(dist, Inputs("app.handler", str(src), arch="arm64"), arch="arm64")
    pipeline.zip_bootstrap(dist, {"env": "TABLE_NAME=cars"})
    assert builds[0].arch == "arm64" and builds[0].env == "TABLE_NAME=cars"


def test_the_inputs_not_given_line_shows_env_names_only(tmp_path: Path) -> None:
    assert pipeline.shown("env", "API_KEY=k3y-Zq9 REGION_NAME=eu") == "env=(API_KEY REGION_NAME)"
    assert pipeline.shown("src", "/fn") == "src=/fn"
