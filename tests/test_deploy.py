"""`make deploy` and `make remote-invoke` against a real HTTP server that speaks the AWS API.

moto runs in server mode, in its own process, on a free 127.0.0.1 port: started once for
this module, reset before each test, stopped after. The commands reach it only through
AWS_ENDPOINT_URL* and fake credentials, as a user's local emulator would be reached.
Where a test needs AWS to answer what moto never does (Pending, throttling, a role not yet
propagated, access denied), a botocore `before-call` hook answers in moto's place for that
one call; every other call still goes over HTTP to moto.

Test zips are built here: a 64-byte ELF64 header with the wanted e_machine, as `bootstrap`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse

from build import deploy, execution_role, remote_invoke
from build.aws_errors import DeployError, explain, with_retries

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
# Distinctive values: none may appear in anything the commands print.
KEY_ID = "AKIASTATICLAMBDA7Q2X"
SECRET = "sEcReT/staticlambda+Zq8vN3wPk5"
TOKEN = "ToKeN-staticlambda-Wx3kL9mRt2"
X86_64, ARM64 = 0x3E, 0xB7
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/hello"


# --- the moto server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """`python -m moto.server` in its own process: its state never leaks into this one."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # AWS's managed policies (AWSLambdaBasicExecutionRole) exist only when asked for.
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        # No Docker here: Invoke answers with the event instead of running the code.
        self.post("/moto-api/config", {"lambda": {"use_docker": False}})

    def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        urllib.request.urlopen(
            urllib.request.Request(self.url + path, data=data), timeout=10
        ).close()

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS setting from the machine; fake credentials; no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    # Without this, a search for credentials ends at 169.254.169.254.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(moto_server: MotoServer, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    return moto_server


def client(service: str) -> Any:
    return boto3.session.Session(region_name=REGION).client(service)


def make_role(name: str = "exec", trust: dict[str, Any] | None = None, **options: Any) -> str:
    trust = trust or execution_role.LAMBDA_TRUST_POLICY
    return str(
        client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **options
        )["Role"]["Arn"]
    )


def configuration(name: str = "hello") -> dict[str, Any]:
    return dict(client("lambda").get_function(FunctionName=name)["Configuration"])


# --- artifacts ---------------------------------------------------------------------------


def elf_header(machine: int) -> bytes:
    """An ELF64 little-endian executable header: the 64 bytes Lambda's loader reads first."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, machine, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0
    )


def make_zip(
    dist: Path,
    machine: int = X86_64,
    body: bytes = b"v1",
    mode: int = 0o755,
    handler: str | None = "handlers.echo.handler",
) -> Path:
    dist.mkdir(parents=True, exist_ok=True)
    info = zipfile.ZipInfo("bootstrap", (1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = (0o100000 | mode) << 16
    path = dist / "function.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(info, elf_header(machine) + body)
    if handler is not None:
        (dist / "bootstrap.handler").write_text(handler + "\n")
    return path


def sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


# --- running the commands ----------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str
    sleeps: list[float]

    @property
    def text(self) -> str:
        return self.out + self.err


def run_deploy(*args: str, zip_path: Path | None = None) -> Result:
    out, err, sleeps = io.StringIO(), io.StringIO(), []
    argv = [*(["--zip", str(zip_path)] if zip_path else []), *args]
    code = deploy.main(argv, out=out, err=err, sleep=sleeps.append)
    return Result(code, out.getvalue(), err.getvalue(), sleeps)


def run_invoke(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = remote_invoke.main(list(args), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue(), [])


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (KEY_ID, SECRET, TOKEN):
            assert secret not in text


Hook = Callable[..., Any]


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Hook]]:
    """botocore event handlers to register on every client the commands make."""
    registered: list[tuple[str, Hook]] = []
    original = deploy.Aws.client

    def with_hooks(self: deploy.Aws, service: str) -> Any:
        made = original(self, service)
        for event, handler in registered:
            made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(deploy.Aws, "client", with_hooks)
    return registered


def answer_instead(parsed: dict[str, Any], status: int, times: int) -> Hook:
    """A before-call handler that answers ``times`` calls itself, then lets them through."""
    left = [times]

    def handler(**_: Any) -> Any:
        if left[0] == 0:
            return None
        left[0] -= 1
        return AWSResponse("http://answered.in.test", status, {}, None), parsed

    return handler


def aws_error(code: str, message: str, status: int = 400, times: int = 1) -> Hook:
    return answer_instead({"Error": {"Code": code, "Message": message}}, status, times)


# --- the artifact, alone -----------------------------------------------------------------


def test_code_sha256_is_base64_of_sha256() -> None:
    assert deploy.code_sha256(b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


@pytest.mark.parametrize(("machine", "arch"), [(X86_64, "x86_64"), (ARM64, "arm64")])
def test_architecture_comes_from_elf_e_machine(tmp_path: Path, machine: int, arch: str) -> None:
    artifact = deploy.read_artifact(make_zip(tmp_path, machine))
    assert artifact.architecture == arch
    assert artifact.handler == "handlers.echo.handler"
    assert artifact.code_sha256 == sha(tmp_path / "function.zip")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"#!/bin/sh\n" + bytes(20), "not an ELF"),
        (elf_header(X86_64)[:4] + b"\x01" + elf_header(X86_64)[5:], "64-bit"),
        (elf_header(0x28), "ELF machine 0x28"),
    ],
)
def test_other_binaries_are_refused(header: bytes, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        deploy.elf_architecture(header)


def test_broken_artifacts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"not found: run `make zip` first"):
        deploy.read_artifact(tmp_path / "function.zip")
    (tmp_path / "function.zip").write_bytes(b"not a zip")
    with pytest.raises(DeployError, match="not a zip"):
        deploy.read_artifact(tmp_path / "function.zip")
    with zipfile.ZipFile(tmp_path / "function.zip", "w") as z:
        z.writestr("handler.py", "")
    with pytest.raises(DeployError, match="no `bootstrap` at its root"):
        deploy.read_artifact(tmp_path / "function.zip")
    with pytest.raises(DeployError, match=r"not executable \(mode 644\)"):
        deploy.read_artifact(make_zip(tmp_path, mode=0o644))


def test_zip_changed_since_the_build_recorded_its_sha256_is_refused(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path)
    recorded = tmp_path / "function.zip.sha256"
    recorded.write_text(f"{hashlib.sha256(zip_path.read_bytes()).hexdigest()}  function.zip\n")
    assert deploy.read_artifact(zip_path).code_sha256 == sha(zip_path)
    recorded.write_text(f"{hashlib.sha256(b'another build').hexdigest()}  function.zip\n")
    with pytest.raises(
        DeployError, match=r"not the zip the build recorded in function\.zip\.sha256"
    ):
        deploy.read_artifact(zip_path)


def test_zip_over_the_direct_upload_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "function.zip"
    with open(big, "wb") as f:  # sparse: 50 MiB + 1 byte, no disk used
        f.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(DeployError, match="at most 50 MiB"):
        deploy.read_artifact(big)


# --- the plan, alone ---------------------------------------------------------------------


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


# --- retries, alone ----------------------------------------------------------------------


def client_error(code: str, message: str = "") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message}}, "UpdateFunctionCode"
    )


def test_retries_back_off_then_give_up() -> None:
    sleeps: list[float] = []
    failures = iter([client_error("ResourceConflictException")] * 2)

    def call() -> str:
        for failure in failures:
            raise failure
        return "done"

    retry = lambda e: e.response["Error"]["Code"] == "ResourceConflictException"  # noqa: E731
    assert with_retries(call, retry, lambda _: None, sleeps.append) == "done"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0

    def always() -> str:
        raise client_error("ResourceConflictException")

    with pytest.raises(botocore.exceptions.ClientError):
        with_retries(always, retry, lambda _: None, sleeps.append, attempts=3)
    assert len(sleeps) == 4  # two more pauses, then the third failure is raised

    def denied() -> str:
        raise client_error("AccessDeniedException")

    with pytest.raises(botocore.exceptions.ClientError):
        with_retries(denied, retry, lambda _: None, sleeps.append)
    assert len(sleeps) == 4


def test_explain_gives_one_line_per_failure() -> None:
    assert explain(botocore.exceptions.NoCredentialsError()).startswith("no AWS credentials found")
    assert explain(botocore.exceptions.NoRegionError()).startswith("no AWS region")
    denied = client_error(
        "AccessDeniedException", "User: x is not authorized to perform: lambda:GetFunction"
    )
    assert (
        explain(denied) == "access denied (UpdateFunctionCode): "
        "User: x is not authorized to perform: lambda:GetFunction"
    )
    assert explain(client_error("UnrecognizedClientException", "bad token")).startswith(
        "AWS rejected the credentials"
    )


# --- deploy against moto -----------------------------------------------------------------


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


def test_create_role_is_least_privilege_and_waits_for_propagation(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    # A new role is not assumable at once: Lambda refuses it twice, then accepts.
    not_yet = "The role defined for the function cannot be assumed by Lambda."
    hooks.append(
        (
            "before-call.lambda.CreateFunction",
            aws_error("InvalidParameterValueException", not_yet, times=2),
        )
    )
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert len(result.sleeps) == 2 and result.out.count("cannot be assumed") == 2
    iam = client("iam")
    role = iam.get_role(RoleName="staticlambda-hello")["Role"]
    assert role["AssumeRolePolicyDocument"] == execution_role.LAMBDA_TRUST_POLICY
    assert "PermissionsBoundary" not in role
    assert iam.list_role_tags(RoleName="staticlambda-hello")["Tags"] == [
        {"Key": "staticlambda:created-for", "Value": "hello"}
    ]
    # No managed policy: AWSLambdaBasicExecutionRole would let it write any log group.
    assert iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == [
        "staticlambda-logs"
    ]
    policy = iam.get_role_policy(RoleName="staticlambda-hello", PolicyName="staticlambda-logs")
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ItsOwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [LOG_GROUP, f"{LOG_GROUP}:*"],
        }
    ]
    assert configuration()["Role"] == role["Arn"]
    assert f"created role {role['Arn']}: trusts lambda.amazonaws.com, inline policy " in result.out


def test_the_plan_says_what_the_role_will_hold_and_the_boundary_is_set(
    aws: MotoServer, tmp_path: Path
) -> None:
    boundary = client("iam").create_policy(
        PolicyName="developer-boundary",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    args = ("--function", "hello", "--create-role", "--permissions-boundary", boundary)
    planned = (
        "role staticlambda-hello (new: trusts lambda.amazonaws.com only, tag "
        "staticlambda:created-for=hello, inline policy staticlambda-logs allowing "
        "logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents on "
        f"arn:aws:logs:{REGION}:<account>:log-group:/aws/lambda/hello and "
        f"arn:aws:logs:{REGION}:<account>:log-group:/aws/lambda/hello:* only, "
        f"no managed policy, permissions boundary {boundary})"
    )
    dry = run_deploy(*args, "--dry-run", zip_path=make_zip(tmp_path))
    assert dry.code == 0, dry.err
    assert f"hello does not exist in {REGION}: would create it: {planned}" in dry.out
    assert [r["RoleName"] for r in client("iam").list_roles()["Roles"]] == []

    result = run_deploy(*args, zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert f"create it: {planned}" in result.out
    role = client("iam").get_role(RoleName="staticlambda-hello")["Role"]
    assert role["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": boundary,
    }
    (created,) = [line for line in result.out.splitlines() if "created role" in line]
    assert created.endswith(f", permissions boundary {boundary}")


def test_create_role_reuses_the_role_it_made_for_the_function_as_it_is(
    aws: MotoServer, tmp_path: Path
) -> None:
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    client("lambda").delete_function(FunctionName="hello")
    result = run_deploy(
        "--function", "hello", "--create-role", "--debug", zip_path=make_zip(tmp_path)
    )
    assert result.code == 0, result.err
    arn = f"arn:aws:iam::{ACCOUNT}:role/staticlambda-hello"
    assert f"create it: role {arn} (made by staticlambda for hello: reused as it is)" in result.out
    iam_calls = {line.split()[2] for line in result.err.splitlines() if "debug: iam." in line}
    assert iam_calls == {
        "iam.GetRole",
        "iam.ListRoleTags",
        "iam.ListAttachedRolePolicies",
        "iam.ListRolePolicies",
        "iam.GetRolePolicy",
    }


def test_create_role_refuses_an_admin_role_of_its_name_and_changes_nothing(
    aws: MotoServer, tmp_path: Path
) -> None:
    # Planted by someone else: trusts another account, holds AdministratorAccess and *:*.
    iam = client("iam")
    other_account = {"AWS": "arn:aws:iam::999999999999:root"}
    make_role(
        "staticlambda-hello",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": other_account, "Action": "sts:AssumeRole"}
            ],
        },
    )
    iam.attach_role_policy(RoleName="staticlambda-hello", PolicyArn=ADMIN_POLICY)
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName="staticlambda-hello", PolicyName="all", PolicyDocument=json.dumps(everything)
    )
    for extra in (["--dry-run"], ["--debug"]):
        result = run_deploy(
            "--function", "hello", "--create-role", *extra, zip_path=make_zip(tmp_path)
        )
        assert result.code == 1
        error = [line for line in result.err.splitlines() if "error" in line]
        assert error == [
            "deploy: error: role staticlambda-hello exists and will not be used for hello: "
            "no tag staticlambda:created-for (staticlambda did not make it); "
            'trusts {"AWS": "arn:aws:iam::999999999999:root"}, not lambda.amazonaws.com '
            "alone; managed policies attached (AdministratorAccess); inline policies not "
            "staticlambda's (all); no inline policy staticlambda-logs. Use --role-name NAME, "
            "delete the role, or pass ROLE=<its ARN>"
        ]
        writes = [
            w
            for w in ("CreateRole", "AttachRolePolicy", "PutRolePolicy", "TagRole")
            if f"iam.{w} " in result.err
        ]
        assert writes == []
    assert client("lambda").list_functions()["Functions"] == []
    attached = iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_POLICY]
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == ["all"]
    assert iam.list_role_tags(RoleName="staticlambda-hello")["Tags"] == []

    # A forged tag does not make it ours: everything else is still wrong.
    iam.tag_role(
        RoleName="staticlambda-hello", Tags=[{"Key": "staticlambda:created-for", "Value": "hello"}]
    )
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 1 and "AdministratorAccess" in result.err
    assert "no tag" not in result.err
    assert client("lambda").list_functions()["Functions"] == []


LAMBDA_ALLOW = {
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole",
}


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            [{**LAMBDA_ALLOW, "Effect": "Deny"}],
            "trust statement is Deny, not Allow",
        ),
        (
            [LAMBDA_ALLOW, {**LAMBDA_ALLOW, "Principal": {"AWS": "999999999999"}}],
            "trust policy has 2 statements, not one Allow for Lambda",
        ),
        (
            [
                {
                    **LAMBDA_ALLOW,
                    "Principal": {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]},
                }
            ],
            'trusts {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}, '
            "not lambda.amazonaws.com alone",
        ),
    ],
    ids=["deny-lambda", "and-another-account", "and-ec2"],
)
def test_create_role_refuses_its_own_role_whose_trust_was_changed(
    aws: MotoServer, tmp_path: Path, statements: list[dict[str, Any]], problem: str
) -> None:
    # The role as this deploy makes it, tag and policy right: only the trust is wrong.
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    client("lambda").delete_function(FunctionName="hello")
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": statements}
    iam.update_assume_role_policy(RoleName="staticlambda-hello", PolicyDocument=json.dumps(trust))
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 1
    assert result.err == (
        f"deploy: error: role staticlambda-hello exists and will not be used for hello: "
        f"{problem}. Use --role-name NAME, delete the role, or pass ROLE=<its ARN>\n"
    )
    assert client("lambda").list_functions()["Functions"] == []
    assert iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == [
        "staticlambda-logs"
    ]


def test_create_role_refuses_a_role_it_made_for_another_function_or_region(
    aws: MotoServer, tmp_path: Path
) -> None:
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    result = run_deploy(
        "--function",
        "other",
        "--create-role",
        "--role-name",
        "staticlambda-hello",
        zip_path=make_zip(tmp_path),
    )
    assert result.code == 1
    assert "made for function hello, not other" in result.err
    # The same name in another region: the policy names the first region's log group.
    result = run_deploy(
        "--function", "hello", "--create-role", "--region", "eu-west-1", zip_path=make_zip(tmp_path)
    )
    assert result.code == 1
    assert (
        f"staticlambda-logs is not the policy for arn:aws:logs:eu-west-1:{ACCOUNT}:"
        "log-group:/aws/lambda/hello" in result.err
    )


def test_long_function_names_get_roles_of_their_own(aws: MotoServer, tmp_path: Path) -> None:
    # 60 characters each, alike for the first 59: cut to 64 with the prefix, they would meet.
    names = ["orders-" + "x" * 52 + "a", "orders-" + "x" * 52 + "b"]
    roles = []
    for name in names:
        result = run_deploy("--function", name, "--create-role", zip_path=make_zip(tmp_path))
        assert result.code == 0, result.err
        roles.append(configuration(name)["Role"].rsplit("/", 1)[1])
    assert roles[0] != roles[1]
    assert all(len(role) == 64 and role.startswith("staticlambda-orders-xxx") for role in roles)
    for name, role in zip(names, roles):
        document = client("iam").get_role_policy(RoleName=role, PolicyName="staticlambda-logs")
        resources = document["PolicyDocument"]["Statement"][0]["Resource"]
        assert resources[0].endswith(f":log-group:/aws/lambda/{name}")


def test_a_qualified_arn_is_planned_with_the_functions_own_role(
    aws: MotoServer, tmp_path: Path
) -> None:
    for function in ("billing", "search"):
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:prod"
        result = run_deploy(
            "--function", arn, "--create-role", "--dry-run", zip_path=make_zip(tmp_path)
        )
        assert result.code == 0, result.err
        assert (
            f"role staticlambda-{function} (new: trusts lambda.amazonaws.com only, tag "
            f"staticlambda:created-for={function}, " in result.out
        )
        assert f"on arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{function} and" in (
            result.out
        )


def test_a_given_role_lambda_cannot_assume_is_not_retried(aws: MotoServer, tmp_path: Path) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    result = run_deploy("--function", "hello", "--role", missing, zip_path=make_zip(tmp_path))
    assert result.code == 1 and result.sleeps == []
    assert (
        "CreateFunction failed: InvalidParameterValueException: "
        "The role defined for the function cannot be assumed by Lambda." in result.err
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


def test_encoded_secrets_are_masked_in_what_remote_invoke_prints(
    aws: MotoServer, hooks: list[tuple[str, Hook]]
) -> None:
    # A function that echoes its environment back, in the forms programs write it.
    escaped = json.dumps({"secret": SECRET}).replace("/", "\\/")
    url = "https://example.test/cb?" + urllib.parse.urlencode({"key": KEY_ID, "token": TOKEN})
    basic = base64.b64encode(f"deploy:{SECRET}".encode()).decode()
    payload = json.dumps({"env": escaped, "url": url, "hex": TOKEN.encode().hex()})
    log = f"START RequestId: 1\nAuthorization: Basic {basic}\nEND RequestId: 1\n"
    answer = {
        "StatusCode": 200,
        "LogResult": base64.b64encode(log.encode()).decode(),
        "Payload": io.BytesIO(payload.encode()),
    }
    hooks.append(("before-call.lambda.Invoke", answer_instead(answer, 200, times=1)))
    result = run_invoke("--function", "hello")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert json.loads(shown["env"]) == {"secret": "****"}
    assert shown["url"] == "https://example.test/cb?key=****&token=****"
    assert shown["hex"] == "****"
    (line,) = [x for x in result.err.splitlines() if x.startswith("Authorization: Basic ")]
    assert "****" in line and basic not in line
    assert_no_secret(result.out, result.err)


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


# --- remote-invoke -----------------------------------------------------------------------


def test_remote_invoke_prints_the_payload(aws: MotoServer, tmp_path: Path) -> None:
    assert (
        run_deploy("--function", "hello", "--role", make_role(), zip_path=make_zip(tmp_path)).code
        == 0
    )
    result = run_invoke("--function", "hello", "--event", '{"text":"Hello"}')
    # moto without Docker answers with the event itself, and sends no log.
    assert (result.code, result.out) == (0, '{"text":"Hello"}\n')
    assert "hello answered HTTP 200" in result.err
    assert "remote-invoke: notice: Lambda returned no log tail" in result.err


def test_remote_invoke_shows_the_function_error_and_log_tail(
    aws: MotoServer, hooks: list[tuple[str, Hook]]
) -> None:
    log = "START RequestId: 1\nboom\nEND RequestId: 1\n"
    answer = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "ExecutedVersion": "$LATEST",
        "LogResult": base64.b64encode(log.encode()).decode(),
        "Payload": io.BytesIO(b'{"errorMessage": "boom", "errorType": "ValueError"}'),
    }
    hooks.append(("before-call.lambda.Invoke", answer_instead(answer, 200, times=1)))
    result = run_invoke("--function", "hello")
    assert result.code == 1
    assert result.out == '{"errorMessage": "boom", "errorType": "ValueError"}\n'
    assert "remote-invoke: error: the function failed (Unhandled)" in result.err
    assert "--- log tail ---\nSTART RequestId: 1\nboom\nEND RequestId: 1\n" in result.err


def test_remote_invoke_refuses_an_event_that_is_not_json(aws: MotoServer) -> None:
    result = run_invoke("--function", "hello", "--event", "{nope")
    assert result.code == 2 and result.err.startswith("remote-invoke: error: EVENT is not JSON")


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
