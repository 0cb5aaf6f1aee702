"""`make deploy` of a zip against moto in server mode (tests/deploy/conftest.py): create,
update, the waits and retries (build/deploy/deployer.py), Lambda Managed Instances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse
from deploy_support import (
    ACCOUNT,
    ARM64,
    REGION,
    Hook,
    answer_instead,
    aws_error,
    client,
    configuration,
    make_role,
    make_zip,
    run_deploy,
    sha,
)
from support import MotoServer


def test_create(aws: MotoServer, tmp_path: Path) -> None:
    role = make_role()
    zip_path = make_zip(tmp_path, handler="handlers.greet.handler")
    result = run_deploy("--function", "hello", "--role", role, zip_path=zip_path)
    assert result.code == 0, result.err
    landed = configuration()
    assert landed["CodeSha256"] == sha(zip_path)
    assert (landed["Runtime"], landed["Architectures"], landed["Handler"]) == (
        "provided.al2023",
        ["x86_64"],
        "handlers.greet.handler",
    )
    assert (landed["MemorySize"], landed["Timeout"], landed["Role"]) == (128, 3, role)
    assert "hello is Active" in result.out
    assert f"CodeSha256 {sha(zip_path)} matches" in result.out
    assert result.err == ""


def test_update_uploads_the_new_code_and_keeps_what_was_not_asked(
    aws: MotoServer, tmp_path: Path
) -> None:
    role = make_role()
    first = make_zip(tmp_path / "a", body=b"v1")
    assert (
        run_deploy("--function", "hello", "--role", role, "--memory", "512", zip_path=first).code
        == 0
    )
    second = make_zip(tmp_path / "b", body=b"v2")
    result = run_deploy("--function", "hello", "--debug", zip_path=second)
    assert result.code == 0, result.err
    landed = configuration()
    assert landed["CodeSha256"] == sha(second) != sha(first)
    assert landed["MemorySize"] == 512  # no MEMORY given: left as it was
    assert f"CodeSha256 {sha(first)} -> {sha(second)}" in result.out
    assert "lambda.UpdateFunctionCode -> HTTP 200" in result.err
    assert "UpdateFunctionConfiguration" not in result.err
    assert "hello is updated" in result.out


def test_configuration_is_updated_when_an_option_changes(aws: MotoServer, tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path)
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path).code == 0
    result = run_deploy(
        "--function", "hello", "--memory", "256", "--timeout", "30", "--debug", zip_path=zip_path
    )
    assert result.code == 0, result.err
    assert (configuration()["MemorySize"], configuration()["Timeout"]) == (256, 30)
    assert "UpdateFunctionCode" not in result.err
    assert "lambda.UpdateFunctionConfiguration -> HTTP 200" in result.err


def test_noop_update_makes_no_change(aws: MotoServer, tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path)
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path).code == 0
    result = run_deploy("--function", "hello", "--debug", zip_path=zip_path)
    assert result.code == 0, result.err
    assert "hello is up to date" in result.out
    calls = [line.split()[2] for line in result.err.splitlines() if " -> HTTP " in line]
    assert calls == ["lambda.GetFunction", "lambda.GetFunction"]  # the plan, then the check


def test_code_sha256_mismatch_is_an_error(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    def corrupt(params: dict[str, Any], **_: Any) -> None:
        params["Code"]["ZipFile"] = params["Code"]["ZipFile"] + b"\0"  # damaged on the way

    hooks.append(("before-parameter-build.lambda.CreateFunction", corrupt))
    zip_path = make_zip(tmp_path)
    result = run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path)
    assert result.code == 1
    assert "the code that landed is not the code that was built" in result.err
    assert sha(zip_path) in result.err
    assert len(result.err.splitlines()) == 1


def test_dry_run_touches_nothing(aws: MotoServer, tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path)
    result = run_deploy("--function", "hello", "--create-role", "--dry-run", zip_path=zip_path)
    assert result.code == 0, result.err
    assert "would create it" in result.out and "dry run: nothing was changed" in result.out
    with pytest.raises(botocore.exceptions.ClientError, match="ResourceNotFoundException"):
        configuration()
    assert client("iam").list_roles()["Roles"] == []

    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path).code == 0
    newer = make_zip(tmp_path / "b", body=b"v2")
    result = run_deploy("--function", "hello", "--memory", "1024", "--dry-run", zip_path=newer)
    assert result.code == 0, result.err
    assert (
        f"would update CodeSha256 {sha(zip_path)} -> {sha(newer)}; MemorySize 128 -> 1024"
        in result.out
    )
    assert configuration()["CodeSha256"] == sha(zip_path)
    assert configuration()["MemorySize"] == 128


def test_missing_role_is_a_usage_error(aws: MotoServer, tmp_path: Path) -> None:
    result = run_deploy("--function", "hello", zip_path=make_zip(tmp_path))
    assert result.code == 2
    assert result.err == (
        "deploy: error: hello does not exist in us-east-1; creating it needs "
        "ROLE=<execution role ARN> (--role), or --create-role\n"
    )


def test_architecture_mismatch_is_refused(aws: MotoServer, tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path, ARM64)
    result = run_deploy(
        "--function", "hello", "--role", make_role(), "--arch", "x86_64", zip_path=zip_path
    )
    assert result.code == 2
    assert "ARCH=x86_64, but bootstrap" in result.err and "built for arm64" in result.err
    assert client("lambda").list_functions()["Functions"] == []
    result = run_deploy(
        "--function", "hello", "--role", make_role("other"), "--arch", "aarch64", zip_path=zip_path
    )
    assert result.code == 0, result.err
    assert configuration()["Architectures"] == ["arm64"]


@pytest.mark.parametrize("runtime", ["provided", "provided.al2"])
def test_old_runtimes_are_accepted_with_a_warning(
    aws: MotoServer, tmp_path: Path, runtime: str
) -> None:
    result = run_deploy(
        "--function",
        "hello",
        "--role",
        make_role(),
        "--runtime",
        runtime,
        zip_path=make_zip(tmp_path),
    )
    assert result.code == 0, result.err
    assert configuration()["Runtime"] == runtime
    assert "deploy: warning: AWS " in result.err and "use provided.al2023" in result.err


def test_progress_while_lambda_is_pending(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    pending = {
        "Configuration": {
            "State": "Pending",
            "StateReasonCode": "Creating",
            "StateReason": "The function is being created.",
        }
    }
    gets = [0]

    def pending_twice_after_create(**kwargs: Any) -> Any:
        gets[0] += 1
        if gets[0] in (2, 3):  # the first GetFunction is the plan's, before CreateFunction
            return AWSResponse("http://answered.in.test", 200, {}, None), pending
        return None

    hooks.append(("before-call.lambda.GetFunction", pending_twice_after_create))
    result = run_deploy("--function", "hello", "--role", make_role(), zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert (
        "waiting for hello to be Active: State Pending, StateReasonCode Creating: "
        "The function is being created." in result.out
    )
    assert result.sleeps == [1, 1]  # the waiter's own delay, between polls


def test_failed_state_is_an_error(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    failed = {
        "Configuration": {
            "State": "Failed",
            "StateReasonCode": "InvalidRuntime",
            "StateReason": "no.",
        }
    }
    hooks.append(("before-call.lambda.GetFunction", answer_instead(failed, 200, times=99)))
    # The plan's GetFunction is answered too: pretend nothing exists by creating anew.
    hooks.insert(
        0, ("before-call.lambda.GetFunction", aws_error("ResourceNotFoundException", "nope", 404))
    )
    result = run_deploy("--function", "hello", "--role", make_role(), zip_path=make_zip(tmp_path))
    assert result.code == 1
    assert (
        result.err == "deploy: error: hello is not Active: "
        "State Failed, StateReasonCode InvalidRuntime: no.\n"
    )


def test_update_in_progress_and_throttling_are_retried(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    assert (
        run_deploy("--function", "hello", "--role", make_role(), zip_path=make_zip(tmp_path)).code
        == 0
    )
    hooks.append(
        (
            "before-call.lambda.UpdateFunctionCode",
            aws_error("ResourceConflictException", "An update is in progress", 409),
        )
    )
    hooks.append(
        (
            "before-call.lambda.UpdateFunctionCode",
            aws_error("TooManyRequestsException", "Rate exceeded", 429),
        )
    )
    newer = make_zip(tmp_path / "b", body=b"v2")
    result = run_deploy("--function", "hello", zip_path=newer)
    assert result.code == 0, result.err
    assert len(result.sleeps) == 2
    assert "ResourceConflictException: An update is in progress (retry 1" in result.out
    assert "TooManyRequestsException: Rate exceeded (retry 2" in result.out
    assert configuration()["CodeSha256"] == sha(newer)


def test_service_endpoint_variables_are_honoured(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", aws.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", aws.url)
    result = run_deploy(
        "--function", "hello", "--create-role", "--debug", zip_path=make_zip(tmp_path)
    )
    assert result.code == 0, result.err
    assert f"lambda endpoint: {aws.url}" in result.err and f"iam endpoint: {aws.url}" in result.err


# --- Lambda Managed Instances ------------------------------------------------------------
# moto accepts CapacityProviderConfig but keeps none of it: the request sent is asserted,
# as botocore serialised it (a before-call hook reads the body; the call still goes to moto).

CAPACITY_PROVIDER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:staticlambda-test"


def sent_bodies(hooks: list[tuple[str, Hook]], operation: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        bodies.append(json.loads(params["body"]))

    hooks.append((f"before-call.lambda.{operation}", record))
    return bodies


def test_create_on_a_capacity_provider(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    created = sent_bodies(hooks, "CreateFunction")
    result = run_deploy(
        "--function",
        "hello",
        "--role",
        make_role(),
        "--capacity-provider",
        CAPACITY_PROVIDER,
        "--max-concurrency",
        "8",
        zip_path=make_zip(tmp_path),
    )
    assert result.code == 0, result.err
    (body,) = created
    assert body["CapacityProviderConfig"] == {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": CAPACITY_PROVIDER,
            "PerExecutionEnvironmentMaxConcurrency": 8,
        }
    }
    # Lambda invokes a Managed Instances function's $LATEST.PUBLISHED.
    assert body["PublishTo"] == "LATEST_PUBLISHED"


def test_an_existing_function_moves_onto_a_capacity_provider(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    zip_path = make_zip(tmp_path)
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path).code == 0
    updated = sent_bodies(hooks, "UpdateFunctionConfiguration")
    published = sent_bodies(hooks, "PublishVersion")
    result = run_deploy(
        "--function", "hello", "--capacity-provider", CAPACITY_PROVIDER, zip_path=zip_path
    )
    assert result.code == 0, result.err
    (body,) = updated
    assert body["CapacityProviderConfig"] == {
        "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": CAPACITY_PROVIDER}
    }
    assert [b.get("PublishTo") for b in published] == ["LATEST_PUBLISHED"]
    assert "publishing hello to $LATEST.PUBLISHED" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--capacity-provider", "my-provider"],
            "CAPACITY_PROVIDER must be a capacity provider ARN",
        ),
        (["--max-concurrency", "0"], "0 is outside Lambda's 1-1600 invokes"),
        (["--max-concurrency", "4"], "MAX_CONCURRENCY needs a capacity provider"),
    ],
)
def test_capacity_provider_usage_errors(
    aws: MotoServer, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_deploy(
        "--function", "hello", "--role", make_role(), *args, zip_path=make_zip(tmp_path)
    )
    assert result.code == 2, result.text
    assert len(result.err.splitlines()) == 1 and message in result.err
