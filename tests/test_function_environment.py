"""A function shaped like the published ones that read `os.environ["X"]` at import, from
`make build` to `make deploy`, through `make` as a user runs it (real builds, the official
emulator, moto in server mode): the init check's error says how to give the variable;
ENV_FILE, given once, reaches the init check, `make invoke` and the deployed function;
`make zip` after a failed build builds that function again, `make invoke` after a source
edit rebuilds, and after `make clean` the echo handler `make zip` builds (and says so)
is not deployed over the function."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from makefile_support import MAKE_VARIABLES
from support import ROOT, MotoServer

# serverless-patterns' shape: the table's name read once, at import.
APP = """\
import os

TABLE = os.environ["CAR_TABLE_NAME"]


def handler(event, context):
    return {"table": TABLE, "version": VERSION}


VERSION = 1
"""
VALUE = "cars-Qx7-table"  # distinctive: never printed by the build or the deploy
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES and not k.startswith("AWS_")
    }
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "BUILDER=native", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def errors(ran: subprocess.CompletedProcess[str], prefix: str) -> list[str]:
    lines = ran.stderr.splitlines()
    return [line for line in lines if line.startswith(prefix) and "build: using" not in line]


def reply(ran: subprocess.CompletedProcess[str]) -> Any:
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


@pytest.fixture
def moto(tmp_path: Path) -> Any:
    server = MotoServer(tmp_path / "moto.log")
    env = {
        **AWS,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    yield env
    server.stop()


def lambda_client(env: dict[str, str]) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    ).client("lambda", endpoint_url=env["AWS_ENDPOINT_URL"])


def role_arn(env: dict[str, str]) -> str:
    import boto3

    iam = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    ).client("iam", endpoint_url=env["AWS_ENDPOINT_URL"])
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    made = iam.create_role(RoleName="cars", AssumeRolePolicyDocument=json.dumps(trust))
    return str(made["Role"]["Arn"])


def test_an_environment_read_at_import_from_build_to_deploy(
    tmp_path: Path, moto: dict[str, str]
) -> None:
    fn, dist = tmp_path / "fn", tmp_path / "dist"
    fn.mkdir()
    (fn / "app.py").write_text(APP)
    env_file = tmp_path / "cars.env"
    env_file.write_text(f"# the function's settings\nCAR_TABLE_NAME={VALUE}\n")
    inputs = ("HANDLER=app.handler", f"SRC={fn}", f"DIST={dist}")

    # 1. Built without its variable: the init check says how to give it, in one line.
    failed = make("build", *inputs)
    assert failed.returncode != 0
    assert errors(failed, "build: ") == [
        "build: KeyError: 'CAR_TABLE_NAME' -- the function reads the environment variable "
        "CAR_TABLE_NAME at init: give it with ENV_FILE=<dotenv file with CAR_TABLE_NAME=...> "
        'or ENV="CAR_TABLE_NAME=..."; INIT_CHECK=0 skips this check'
    ]

    # 2. `make zip` after the failed build builds that function again, never echo; ENV_FILE
    #    given once reaches the init check, which passes.
    zipped = make("zip", f"DIST={dist}", f"ENV_FILE={env_file}")
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    assert "zip: building first: the last build asked for (HANDLER=app.handler" in zipped.stdout
    assert "    environment: CAR_TABLE_NAME (ENV_FILE/ENV)" in zipped.stdout
    assert "init ok" in zipped.stdout
    assert (dist / "bootstrap.handler").read_text() == "app.handler\n"
    assert VALUE not in zipped.stdout + zipped.stderr

    # 3. `make invoke` gives it too, without repeating it, and builds nothing.
    invoked = make("invoke", f"DIST={dist}")
    assert reply(invoked) == {"table": VALUE, "version": 1}
    assert "bootstrap: " in invoked.stdout and "as built (HANDLER=app.handler" in invoked.stdout

    # 4. Its value edited: the init check alone runs again; the binary stays.
    before = (dist / "bootstrap").read_bytes()
    env_file.write_text("CAR_TABLE_NAME=trucks\n")
    invoked = make("invoke", f"DIST={dist}")
    assert reply(invoked) == {"table": "trucks", "version": 1}
    assert "the function's environment (ENV_FILE/ENV) changed" in invoked.stdout
    assert "==> freeze" not in invoked.stdout and (dist / "bootstrap").read_bytes() == before

    # 5. The source edited: `make invoke` rebuilds first, as `make zip` would.
    (fn / "app.py").write_text(APP.replace("VERSION = 1", "VERSION = 2"))
    invoked = make("invoke", f"DIST={dist}")
    assert reply(invoked) == {"table": "trucks", "version": 2}
    assert "bootstrap: building first: files of the last build's inputs changed" in (invoked.stdout)
    assert "==> freeze app.handler" in invoked.stdout

    # 6. Deployed with the variables the init check ran with; names said, values never.
    zipped = make("zip", f"DIST={dist}")
    assert "zip: " in zipped.stdout and "as built" in zipped.stdout
    role = role_arn(moto)
    deployed = make("deploy", "FUNCTION=cars", f"ROLE={role}", f"DIST={dist}", env=moto)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    sha = hashlib.sha256((dist / "bootstrap").read_bytes()).hexdigest()
    assert f"deploy: deploying handler app.handler: bootstrap sha256 {sha}, environment " in (
        deployed.stdout
    )
    assert "Environment CAR_TABLE_NAME" in deployed.stdout
    assert "trucks" not in deployed.stdout + deployed.stderr
    landed = lambda_client(moto).get_function(FunctionName="cars")["Configuration"]
    assert landed["Environment"]["Variables"] == {"CAR_TABLE_NAME": "trucks"}
    assert landed["Handler"] == "app.handler"

    # 7. After `make clean`, `make zip` says it builds the echo handler, and `make deploy`
    #    will not put echo over the function.
    assert make("clean", f"DIST={dist}").returncode == 0
    echo = make("zip", f"DIST={dist}")
    assert echo.returncode == 0, echo.stdout + echo.stderr
    assert echo.stdout.count("building the default echo handler (handlers.echo.handler)") == 1
    refused = make("deploy", "FUNCTION=cars", f"DIST={dist}", env=moto)
    assert refused.returncode != 0
    assert errors(refused, "deploy: error: ") == [
        f"deploy: error: cars runs HANDLER=app.handler, but {dist / 'function.zip'} is the "
        "default echo handler: build yours first (make zip HANDLER=app.handler SRC=<its "
        "folder>), or FORCE=1 to deploy echo over it"
    ]
    after = lambda_client(moto).get_function(FunctionName="cars")["Configuration"]
    assert after["CodeSha256"] == landed["CodeSha256"]
