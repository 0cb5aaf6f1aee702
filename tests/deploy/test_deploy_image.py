"""`make deploy PACKAGE=image` (build/deploy/image_cli.py, ecr.py, image.py) against moto in
server mode, with a recording `skopeo`.

moto runs with MOTO_LAMBDA_STUB_ECR=false: CreateFunction and UpdateFunctionCode then accept
an ImageUri only when its image is in moto's ECR. The `skopeo` on PATH records its argv and
the auth file it was handed, and does what a registry push does to ECR: PutImage with the
archive's own manifest and its digest, and writes that digest to --digestfile.

The image is `make image`'s own (build/image.py) around a 64-byte ELF header.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    ACCOUNT,
    KEY_ID,
    REGION,
    ROOT,
    SECRET,
    TOKEN,
    X86_64,
    client,
    elf_header,
    make_role,
    make_zip,
)
from support import MotoServer

from build import deploy
from build.aws_errors import DeployError
from build.deploy.ecr import SKOPEO_MISSING
from build.deploy.image import Image, read_image
from build.errors import BuildError
from build.image import write_image

REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/hello"
ECR_PASSWORD = f"{ACCOUNT}-auth-token"  # what moto's GetAuthorizationToken gives

RECORDING_SKOPEO = """#!{python}
import json, os, sys, tarfile
import boto3

argv = sys.argv[1:]
authfile = argv[argv.index("--dest-authfile") + 1]
record = {{
    "argv": ["skopeo", *argv],
    "auth": json.load(open(authfile)),
    "auth_mode": os.stat(authfile).st_mode & 0o777,
}}
with open(os.environ["SKOPEO_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
source, destination = argv[-2], argv[-1]
with tarfile.open(source.removeprefix("oci-archive:")) as archive:
    (entry,) = json.load(archive.extractfile("index.json"))["manifests"]
    digest = entry["digest"]
    manifest = archive.extractfile("blobs/sha256/" + digest.split(":")[1]).read().decode()
repository, tag = destination.removeprefix("docker://").split("/", 1)[1].rsplit(":", 1)
ecr = boto3.client("ecr")
try:
    ecr.put_image(
        repositoryName=repository, imageManifest=manifest, imageTag=tag, imageDigest=digest,
        imageManifestMediaType=entry["mediaType"],
    )
except ecr.exceptions.ImageAlreadyExistsException:
    pass  # a registry takes the same manifest again under the same tag
with open(argv[argv.index("--digestfile") + 1], "w") as f:
    f.write(digest)
"""


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """This module's own moto, whose Lambda takes only images its ECR holds; conftest.py's
    `aws` fixture aims the commands at it and resets it before each test."""
    saved = os.environ.get("MOTO_LAMBDA_STUB_ECR")
    os.environ["MOTO_LAMBDA_STUB_ECR"] = "false"  # the server reads it from its environment
    try:
        server = MotoServer(tmp_path_factory.mktemp("moto-ecr") / "moto.log")
    finally:
        os.environ.pop("MOTO_LAMBDA_STUB_ECR")
        if saved is not None:
            os.environ["MOTO_LAMBDA_STUB_ECR"] = saved
    yield server
    server.stop()


@pytest.fixture
def skopeo_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    skopeo = bin_dir / "skopeo"
    skopeo.write_text(RECORDING_SKOPEO.format(python=sys.executable))
    skopeo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "skopeo.jsonl"
    monkeypatch.setenv("SKOPEO_LOG", str(log))
    return log


def pushes(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def image(dist: Path, body: bytes = b"v1") -> Image:
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "bootstrap").write_bytes(elf_header(X86_64) + body)
    write_image(dist / "bootstrap", dist / "image.oci.tar")
    return read_image(dist / "image.oci.tar")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        code = deploy.main(list(args), out=out, err=err, sleep=lambda _: None)
    return code, out.getvalue(), err.getvalue()


def assert_no_secret(*texts: str) -> None:
    auth = base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode()
    for secret in (KEY_ID, SECRET, TOKEN, ECR_PASSWORD, auth):
        for text in texts:
            assert secret not in text


def function(name: str = "hello") -> dict[str, Any]:
    return dict(client("lambda").get_function(FunctionName=name))


def test_the_push_then_a_function_that_runs_the_image_by_digest(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    client("ecr").create_repository(repositoryName="hello")
    role = make_role()
    built = image(tmp_path / "dist")
    code, out, err = run(
        "--function=hello", f"--repository={REPOSITORY}", f"--role={role}", f"--image={built.path}"
    )
    assert code == 0, err
    (push,) = pushes(skopeo_log)
    tag = "staticlambda-" + built.digest.split(":")[1][:12]
    authfile, digestfile = push["argv"][4], push["argv"][6]
    assert push["argv"] == [
        "skopeo",
        "copy",
        "--preserve-digests",
        "--dest-authfile",
        authfile,
        "--digestfile",
        digestfile,
        f"oci-archive:{built.path}",
        f"docker://{REPOSITORY}:{tag}",
    ]
    # ECR's password reaches skopeo in a file only this user reads, gone after the push.
    registry = REPOSITORY.split("/")[0]
    assert push["auth"] == {
        "auths": {registry: {"auth": base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode()}}
    }
    assert push["auth_mode"] == 0o600 and not Path(authfile).exists()
    landed = function()
    assert landed["Configuration"]["PackageType"] == "Image"
    assert landed["Configuration"]["Architectures"] == ["x86_64"]
    assert landed["Code"]["ImageUri"] == f"{REPOSITORY}@{built.digest}"
    assert landed["Code"]["ResolvedImageUri"].endswith("@" + built.digest)
    assert f"created arn:aws:lambda:{REGION}:{ACCOUNT}:function:hello: runs " in out
    assert_no_secret(out, err)


def test_a_new_image_updates_the_function_and_the_same_one_changes_nothing(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    client("ecr").create_repository(repositoryName="hello")
    role = make_role()
    first = image(tmp_path / "one")
    args = ["--function=hello", f"--repository={REPOSITORY}", f"--role={role}"]
    assert run(*args, f"--image={first.path}")[0] == 0
    second = image(tmp_path / "two", b"v2")
    code, out, err = run(*args, f"--image={second.path}", "--memory=256")
    assert code == 0, err
    assert f"update ImageUri {REPOSITORY}@{first.digest} -> {REPOSITORY}@{second.digest}" in out
    landed = function()
    assert landed["Code"]["ImageUri"] == f"{REPOSITORY}@{second.digest}"
    assert landed["Configuration"]["MemorySize"] == 256
    code, out, err = run(*args, f"--image={second.path}")
    assert code == 0, err
    assert "hello is up to date" in out
    assert len(pushes(skopeo_log)) == 3


def test_the_dry_run_shows_the_plan_and_pushes_nothing(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    client("ecr").create_repository(repositoryName="hello")
    built = image(tmp_path / "dist")
    code, out, err = run(
        "--function=hello",
        f"--repository={REPOSITORY}",
        "--create-role",
        f"--image={built.path}",
        "--dry-run",
    )
    assert code == 0, err
    tag = "staticlambda-" + built.digest.split(":")[1][:12]
    assert (
        f"would push: skopeo copy --preserve-digests oci-archive:{built.path} "
        f"docker://{REPOSITORY}:{tag}"
    ) in out
    assert "hello does not exist in us-east-1: would create it: PackageType Image, role " in out
    assert f"ImageUri {REPOSITORY}@{built.digest}" in out
    assert "dry run: nothing was changed" in out
    assert pushes(skopeo_log) == []
    assert client("lambda").list_functions()["Functions"] == []
    assert client("iam").list_roles()["Roles"] == []


def test_without_a_repository_the_steps_are_printed_and_nothing_is_touched(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    built = image(tmp_path / "dist")
    code, _, err = run("--function=hello", f"--image={built.path}")
    assert code == 2
    assert err.startswith("deploy: error: no IMAGE_REPOSITORY: an image function runs an image")
    assert "aws ecr create-repository --repository-name hello" in err
    assert "IMAGE_REPOSITORY=<account>.dkr.ecr.<region>.amazonaws.com/hello` pushes" in err
    assert pushes(skopeo_log) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            [f"--repository={REPOSITORY}", "--role=arn:aws:iam::123456789012:role/exec"],
            1,
            f"ECR repository hello does not exist in {ACCOUNT} {REGION}: aws ecr "
            f"create-repository --repository-name hello --region {REGION}",
        ),
        (
            ["--repository=docker.io/library/hello"],
            2,
            "IMAGE_REPOSITORY='docker.io/library/hello' is not an ECR repository: "
            "<account>.dkr.ecr.<region>.amazonaws.com/<name>",
        ),
        (
            [f"--repository={REPOSITORY.replace(REGION, 'eu-west-1')}", f"--region={REGION}"],
            2,
            f"IMAGE_REPOSITORY is in eu-west-1, the function in {REGION}: Lambda runs images "
            "from its own region's ECR",
        ),
        (
            [f"--repository={REPOSITORY}", "--runtime=provided.al2023"],
            2,
            "RUNTIME and --handler are for .zip functions: an image function runs its "
            "ENTRYPOINT, /bootstrap",
        ),
        (
            [f"--repository={REPOSITORY}", "--arch=arm64"],
            2,
            "ARCH=arm64, but {image} is x86_64: rebuild, or drop ARCH",
        ),
    ],
)
def test_each_mistake_is_one_line(
    aws: MotoServer,
    skopeo_log: Path,
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
) -> None:
    built = image(tmp_path / "dist")
    result, _, err = run("--function=hello", f"--image={built.path}", *args)
    assert (result, err) == (code, f"deploy: error: {message.format(image=built.path)}\n")
    assert pushes(skopeo_log) == []


def test_a_zip_function_is_never_turned_into_an_image_one(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    client("ecr").create_repository(repositoryName="hello")
    role = make_role()
    zip_path = make_zip(tmp_path / "zip")
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert deploy.main(["--function=hello", f"--role={role}", f"--zip={zip_path}"]) == 0
    built = image(tmp_path / "dist")
    code, _, err = run("--function=hello", f"--repository={REPOSITORY}", f"--image={built.path}")
    assert code == 1
    assert "hello is a .zip function, and Lambda cannot change a function's package type" in err
    assert pushes(skopeo_log) == []
    assert function()["Configuration"]["PackageType"] == "Zip"


def test_a_missing_skopeo_is_one_line_before_anything_changes(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client("ecr").create_repository(repositoryName="hello")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    built = image(tmp_path / "dist")
    code, _, err = run(
        "--function=hello", f"--repository={REPOSITORY}", "--create-role", f"--image={built.path}"
    )
    assert (code, err) == (1, f"deploy: error: {SKOPEO_MISSING}\n")
    assert client("iam").list_roles()["Roles"] == []


def test_make_deploy_package_image_passes_its_variables_as_data(tmp_path: Path) -> None:
    from makefile_support import MAKE_VARIABLES, recorded_make

    calls, _ = recorded_make(
        tmp_path,
        "deploy",
        "PACKAGE=image",
        "FUNCTION=hello",
        f"IMAGE_REPOSITORY={REPOSITORY}",
        "IMAGE_TAG=$(shell touch pwned)",
        "DIST=out",
    )
    (argv,) = [c for c in calls if "build.deploy" in c]
    assert argv[1:] == [
        "-m",
        "build.deploy",
        "--image=out/image.oci.tar",
        f"--repository={REPOSITORY}",
        "--tag=$(shell touch pwned)",
        "--function=hello",
    ]
    assert not (ROOT / "pwned").exists()
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    wrong = subprocess.run(
        ["make", "--no-print-directory", "deploy", "PACKAGE=tarball", "FUNCTION=hello"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 2
    assert "PACKAGE=tarball is neither zip nor image" in wrong.stderr


def test_an_archive_changed_since_make_image_is_refused(tmp_path: Path) -> None:
    built = image(tmp_path / "dist")
    built.path.write_bytes(built.path.read_bytes() + b"\0" * 512)
    with pytest.raises(DeployError) as refused:
        read_image(built.path)
    assert str(refused.value) == (
        f"{built.path} is not the image recorded in image.oci.tar.sha256: run `make image`"
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"#!/bin/sh\n" + bytes(20), "is not a 64-bit little-endian ELF: run `make build`"),
        (
            elf_header(X86_64)[:4] + b"\x01" + elf_header(X86_64)[5:],
            "is not a 64-bit little-endian ELF: run `make build`",
        ),
        (elf_header(0x28), "is built for ELF machine 0x28, not one Lambda runs"),
    ],
    ids=["script", "32-bit", "arm32"],
)
def test_make_image_refuses_a_bootstrap_lambda_cannot_run(
    tmp_path: Path, header: bytes, message: str
) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_bytes(header + b"v1")
    with pytest.raises(BuildError) as refused:
        write_image(bootstrap, tmp_path / "image.oci.tar")
    assert str(refused.value) == f"{bootstrap} {message}"
    assert not (tmp_path / "image.oci.tar").exists()


def test_a_zip_and_an_image_at_once_is_a_usage_error(tmp_path: Path) -> None:
    built = image(tmp_path / "dist")
    code, out, err = run(
        "--function=hello", f"--image={built.path}", f"--zip={tmp_path / 'function.zip'}"
    )
    assert (code, out) == (2, "")
    assert err == (
        "deploy: error: give --zip (a .zip function) or --image (PACKAGE=image), not both\n"
    )


def test_python_m_build_deploy_with_image_options_deploys_the_image(
    aws: MotoServer, skopeo_log: Path, tmp_path: Path
) -> None:
    # The one command line: `--image` makes `python -m build.deploy` an image deploy.
    client("ecr").create_repository(repositoryName="hello")
    built = image(tmp_path / "dist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build.deploy",
            "--function=hello",
            f"--repository={REPOSITORY}",
            f"--role={make_role()}",
            f"--image={built.path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"runs {REPOSITORY}@{built.digest} (x86_64)" in done.stdout
    assert len(pushes(skopeo_log)) == 1
    assert function()["Code"]["ImageUri"] == f"{REPOSITORY}@{built.digest}"
