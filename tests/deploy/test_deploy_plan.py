"""build/deploy/plan.py: what a deploy would do, from GetFunction's answer, alone (no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_support import (
    X86_64,
    make_zip,
)

from build import deploy
from build.aws_errors import DeployError


def artifact_for(tmp_path: Path, machine: int = X86_64) -> deploy.Artifact:
    return deploy.read_artifact(make_zip(tmp_path, machine))


def test_plan_compares_only_the_options_given(tmp_path: Path) -> None:
    artifact = artifact_for(tmp_path)
    current = {
        "CodeSha256": artifact.code_sha256,
        "Architectures": ["x86_64"],
        "Runtime": "provided.al2",
        "Handler": "handlers.echo.handler",
        "MemorySize": 512,
        "Timeout": 30,
        "PackageType": "Zip",
    }
    wanted = deploy.Wanted("hello", "handlers.echo.handler")
    assert deploy.make_plan(current, wanted, artifact).up_to_date
    plan = deploy.make_plan(
        current, deploy.Wanted("hello", "handlers.echo.handler", memory_size=256), artifact
    )
    assert (plan.upload_code, plan.configuration) == (False, {"MemorySize": 256})
    plan = deploy.make_plan({**current, "Architectures": ["arm64"]}, wanted, artifact)
    assert plan.upload_code and plan.changes == ["Architectures arm64 -> x86_64"]


def test_plan_refuses_a_function_on_a_language_runtime(tmp_path: Path) -> None:
    current = {"Runtime": "python3.12", "PackageType": "Zip"}
    with pytest.raises(DeployError, match=r"runs python3.12.*RUNTIME=provided.al2023"):
        deploy.make_plan(current, deploy.Wanted("hello", "h.h"), artifact_for(tmp_path))
