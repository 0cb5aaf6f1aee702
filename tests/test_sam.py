"""`sam build` through staticlambda: AWS SAM's makefile build method, for real.

aws-sam-cli (requirements/sam.txt, pinned by hash) lives in a venv of its own,
.cache/sam-venv, made once here: its exact pins (boto3, PyYAML, ...) would fight
requirements/dev.txt. The template of tests/fixtures/samapp has two functions, each with a
Makefile that includes staticlambda.mk; one reads a data file, the other has a
requirements.txt. One `sam build --parallel` per session builds both, in no container.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from makefile_support import MAKE_VARIABLES

from build import sam
from build.rie import Emulator
from build.verify import ldd_report

ROOT = Path(__file__).resolve().parent.parent
SAM_APP = ROOT / "tests" / "fixtures" / "samapp"
SAM_PINS = ROOT / "requirements" / "sam.txt"
SAM_VENV = ROOT / ".cache" / "sam-venv"
SIX_VERSION = "1.17.0"


def sam_cli() -> Path:
    """`sam` from requirements/sam.txt, installed once per content of that file.

    --no-deps: the file is pip-compile's whole closure, every package pinned by hash; pip's
    resolver would trip on aws-sam-cli's own extras (boto3[crt]) in hash-checking mode."""
    stamp = SAM_VENV / ".installed"
    wanted = hashlib.sha256(SAM_PINS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        return SAM_VENV / "bin" / "sam"
    shutil.rmtree(SAM_VENV, ignore_errors=True)
    python = subprocess.run(
        [sys.executable, str(ROOT / "build" / "interpreter.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([python, "-m", "venv", str(SAM_VENV)], check=True)
    pins = ["--require-hashes", "-r", str(SAM_PINS)]
    installed = subprocess.run(
        [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", *pins],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert installed.returncode == 0, f"installing aws-sam-cli failed:\n{installed.stderr}"
    stamp.write_text(wanted)
    return SAM_VENV / "bin" / "sam"


def sam_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    env["STATICLAMBDA"] = str(ROOT)
    env["SAM_CLI_TELEMETRY"] = "0"  # the tests reach no address but PyPI's
    return env


@pytest.fixture(scope="session")
def sam_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's SAM project, built once with `sam build --parallel`."""
    project = tmp_path_factory.mktemp("sam-project") / "app"
    shutil.copytree(SAM_APP, project)
    built = subprocess.run(
        [str(sam_cli()), "build", "--parallel"],
        cwd=project,
        env=sam_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    (project / "sam-build.log").write_text(built.stdout + built.stderr)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return project


def lambda_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30"}


def invoke(bootstrap: Path, event: object) -> object:
    with Emulator([str(bootstrap)], env=lambda_env(), cwd=bootstrap.parent) as rie:
        status, body = rie.invoke(json.dumps(event))
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("logical_id", ["HelloFunction", "GreeterFunction"])
def test_each_function_lands_alone_and_static_in_its_artifacts_dir(
    sam_project: Path, logical_id: str
) -> None:
    artifacts = sam_project / ".aws-sam" / "build" / logical_id
    assert sorted(p.name for p in artifacts.iterdir()) == ["bootstrap"]
    bootstrap = artifacts / "bootstrap"
    assert bootstrap.stat().st_mode & 0o777 == 0o755
    assert "not a dynamic executable" in ldd_report(bootstrap)
    built_template = (sam_project / ".aws-sam" / "build" / "template.yaml").read_text()
    assert f"CodeUri: {logical_id}" in built_template


def test_the_function_without_requirements_answers_with_its_data_file(sam_project: Path) -> None:
    bootstrap = sam_project / ".aws-sam" / "build" / "HelloFunction" / "bootstrap"
    assert invoke(bootstrap, {"text": "Hi"}) == {
        "function": "hello",
        "greeting": "Hello from a data file",
        "event": {"text": "Hi"},
    }


def test_the_function_with_requirements_answers_with_them(sam_project: Path) -> None:
    bootstrap = sam_project / ".aws-sam" / "build" / "GreeterFunction" / "bootstrap"
    assert invoke(bootstrap, {"text": "Hi"}) == {
        "function": "greeter",
        "six": SIX_VERSION,
        "text": "Hi",
    }


def test_the_two_functions_built_in_folders_of_their_own(sam_project: Path) -> None:
    log = (sam_project / "sam-build.log").read_text()
    homes = {}
    for logical_id, code_uri in (("HelloFunction", "hello"), ("GreeterFunction", "greeter")):
        home = sam.SamFunction(logical_id, "", sam_project, sam_project / code_uri, None).home
        assert f"SBOM {home / 'dist' / 'bootstrap.cdx.json'}" in log
        homes[logical_id] = home
    assert homes["HelloFunction"] != homes["GreeterFunction"]
    # Each function's own handler and requirements, from its own folder.
    assert (homes["HelloFunction"] / "dist" / "bootstrap.handler").read_text() == "app.handler\n"
    assert (homes["GreeterFunction"] / "dist" / "bootstrap.handler").read_text() == (
        "greet.handler\n"
    )
    sbom = json.loads((homes["GreeterFunction"] / "dist" / "bootstrap.cdx.json").read_text())
    assert [c["version"] for c in sbom["components"] if c["name"] == "six"] == [SIX_VERSION]
    sbom = json.loads((homes["HelloFunction"] / "dist" / "bootstrap.cdx.json").read_text())
    assert [c for c in sbom["components"] if c["name"] == "six"] == []
    assert "excluded: Makefile" in log  # the Makefile SAM copies is no data of the function


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--logical-id=HelloFunction", "--artifacts-dir=/tmp/x"],
            "build: build-HelloFunction names no handler: "
            "$(call staticlambda,module.function) in its Makefile rule",
        ),
        (
            ["--logical-id=HelloFunction", "--handler=app.handler"],
            "build: ARTIFACTS_DIR is not set: `sam build` sets it; to try the rule without SAM, "
            "run make build-<LogicalId> ARTIFACTS_DIR=<folder>",
        ),
        (
            ["--logical-id=Hello-Function", "--handler=app.handler", "--artifacts-dir=/tmp/x"],
            "build: 'Hello-Function' is not a SAM logical id: name the rule build-<LogicalId>",
        ),
        (
            ["--logical-id=HelloFunction", "--handler=app", "--artifacts-dir=/tmp/x"],
            "build: HANDLER='app' is not module.function (for example handlers.echo.handler)",
        ),
    ],
)
def test_a_wrong_rule_is_one_line_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status = sam.main([*args, f"--src={tmp_path}", f"--code-uri={tmp_path}"])
    assert status == 1
    assert capsys.readouterr().err.strip() == message


def readme_block(section: str, after: str) -> str:
    """The fenced block that follows ``after`` in the README's section ``section``."""
    text = (ROOT / "README.md").read_text().split(f"\n## {section}\n", 1)[1].split("\n## ")[0]
    block = text.split(after, 1)[1].split("```", 2)[1]
    return block.split("\n", 1)[1]  # without the fence's language line


def test_the_readme_shows_the_template_and_makefile_this_test_builds() -> None:
    section = "Deploy with SAM, CDK, Terraform"
    assert readme_block(section, "`template.yaml`:") == (SAM_APP / "template.yaml").read_text()
    makefile = readme_block(section, "`hello/Makefile`")
    assert makefile == (SAM_APP / "hello" / "Makefile").read_text()
    assert (SAM_APP / "greeter" / "Makefile").read_text() == makefile.replace(
        "build-HelloFunction", "build-GreeterFunction"
    ).replace("app.handler", "greet.handler")
