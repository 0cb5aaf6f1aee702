"""`python -m build.deploy` and `make deploy` (build/deploy/cli.py): one clear line for each
user error, no credential in anything printed, --help, the argv the Makefile runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import (
    ACCOUNT,
    KEY_ID,
    REGION,
    ROOT,
    SECRET,
    Hook,
    assert_no_secret,
    aws_error,
    configuration,
    make_role,
    make_zip,
    run_deploy,
    run_invoke,
)
from support import MotoServer

# --- one clear line for each user error --------------------------------------------------


def test_zip_missing(aws: MotoServer, tmp_path: Path) -> None:
    result = run_deploy("--function", "hello", zip_path=tmp_path / "function.zip")
    assert (result.code, result.out) == (1, "")
    assert (
        result.err
        == f"deploy: error: {tmp_path / 'function.zip'} not found: run `make zip` first\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no function name: make deploy FUNCTION=<name>"),
        (["--function", "f", "--memory", "64"], "64 is outside Lambda's 128-10240 MB"),
        (["--function", "f", "--runtime", "python3.12"], "invalid choice: 'python3.12'"),
        (["--function", "f", "--role", "admin"], "ROLE must be an IAM role ARN"),
        (
            ["--function", "f", "--role", f"arn:aws:iam::{ACCOUNT}:role/r", "--create-role"],
            "not both",
        ),
        (["--function", "my function"], "FUNCTION must be a function name"),
        (
            ["--function", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:f", "--dry-run"],
            f"FUNCTION is in eu-west-1, but the region is {REGION}: pass REGION=eu-west-1",
        ),
        (
            ["--function", "f", "--create-role", "--permissions-boundary", "admin"],
            "PERMISSIONS_BOUNDARY must be an IAM policy ARN",
        ),
        (
            ["--function", "f", "--permissions-boundary", f"arn:aws:iam::{ACCOUNT}:policy/b"],
            "PERMISSIONS_BOUNDARY is for the role CREATE_ROLE=1 (--create-role) makes",
        ),
        (["--function", "f", "--create-role", "--role-name", "a/b"], "not an IAM role name"),
    ],
)
def test_usage_errors(aws: MotoServer, tmp_path: Path, args: list[str], message: str) -> None:
    result = run_deploy(*args, zip_path=make_zip(tmp_path))
    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and message in result.err


def test_no_credentials(clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    result = run_deploy("--function", "hello", zip_path=make_zip(tmp_path))
    assert result.code == 1
    assert (
        result.err.startswith("deploy: error: no AWS credentials found")
        and result.err.count("\n") == 1
    )


def test_unknown_region(clean_env: None, tmp_path: Path) -> None:
    # AWS's own endpoints: the check happens before any request is sent.
    result = run_deploy(
        "--function", "hello", "--region", "xx-nowhere-9", zip_path=make_zip(tmp_path)
    )
    assert (result.code, result.err) == (
        2,
        "deploy: error: unknown AWS region 'xx-nowhere-9' (check REGION / AWS_REGION)\n",
    )


def test_AWS_REGION_alone_names_the_region(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As for the AWS CLI and inside Lambda; boto3 by itself reads only AWS_DEFAULT_REGION.
    role = make_role()
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)
    result = run_deploy("--function", "hello", "--role", role, zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert f":{REGION}:" in configuration()["FunctionArn"]


def test_access_denied(aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]) -> None:
    message = (
        f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: lambda:GetFunction"
    )
    hooks.append(
        ("before-call.lambda.GetFunction", aws_error("AccessDeniedException", message, 403))
    )
    result = run_deploy("--function", "hello", zip_path=make_zip(tmp_path))
    assert (result.code, result.err) == (
        1,
        f"deploy: error: access denied (GetFunction): {message}\n",
    )


# --- credentials are never printed -------------------------------------------------------


def test_no_secret_in_any_output(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    outputs = [
        run_deploy("--function", "hello", "--create-role", "--debug", zip_path=make_zip(tmp_path)),
        run_deploy("--function", "hello", "--debug", zip_path=make_zip(tmp_path / "b", body=b"v2")),
        run_deploy(
            "--function",
            "hello",
            "--debug",
            "--dry-run",
            "--memory",
            "256",
            zip_path=make_zip(tmp_path),
        ),
        run_deploy("--function", "gone", "--debug", zip_path=make_zip(tmp_path)),
        run_invoke("--function", "hello", "--debug"),
    ]
    # Even a message from AWS that quotes a credential comes out masked.
    hooks.append(
        (
            "before-call.lambda.GetFunction",
            aws_error("UnrecognizedClientException", f"bad key {KEY_ID}/{SECRET}"),
        )
    )
    leaky = run_deploy("--function", "hello", "--debug", zip_path=make_zip(tmp_path))
    assert leaky.code == 1 and "bad key ****/****" in leaky.err
    for result in [*outputs, leaky]:
        assert_no_secret(result.out, result.err)
    assert [r.code for r in outputs] == [0, 0, 0, 2, 0]


def test_as_a_module_with_debug_prints_no_secret(aws: MotoServer, tmp_path: Path) -> None:
    # A separate process: whatever botocore's logging might print would show here too.
    command = [
        sys.executable,
        "-m",
        "build.deploy",
        "--function",
        "hello",
        "--create-role",
        "--debug",
        "--zip",
        str(make_zip(tmp_path)),
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        "hello is Active" in done.stdout
        and "debug: lambda.CreateFunction -> HTTP 201" in done.stderr
    )
    assert_no_secret(done.stdout, done.stderr)


def test_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build.deploy", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    for option in (
        "--function",
        "--role",
        "--create-role",
        "--runtime",
        "--arch",
        "--region",
        "--memory",
        "--timeout",
        "--handler",
        "--dry-run",
        "AWS_ENDPOINT_URL",
    ):
        assert option in done.stdout


# --- the Makefile ------------------------------------------------------------------------


def test_make_passes_only_the_variables_given(tmp_path: Path) -> None:
    # The Makefile passes values as data ("$SL_X"): the argv a recording python
    # receives is what counts (tests/makefile_support.py).
    from makefile_support import recorded_make

    calls, _ = recorded_make(tmp_path, "deploy", "FUNCTION=hello", "MEMORY=256", "DIST=out")
    (argv,) = [c for c in calls if "build.deploy" in c]
    assert argv[1:] == [
        "-m",
        "build.deploy",
        "--zip=out/function.zip",
        "--function=hello",
        "--memory=256",
    ]
