"""What the deploy tests share (their fixtures are in conftest.py beside this): the fake
account and credentials, clients aimed at moto, test zips, the commands run in-process, and
botocore hooks that answer what moto never does.

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
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.awsrequest import AWSResponse
from support import ROOT

from build import deploy, execution_role, remote_invoke

__all__ = ["ROOT"]  # the deploy tests import it from here with the rest

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Distinctive values: none may appear in anything the commands print.
KEY_ID = "AKIASTATICLAMBDA7Q2X"
SECRET = "sEcReT/staticlambda+Zq8vN3wPk5"
TOKEN = "ToKeN-staticlambda-Wx3kL9mRt2"
X86_64, ARM64 = 0x3E, 0xB7
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/hello"


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
