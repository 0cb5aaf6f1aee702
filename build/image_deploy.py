"""`make deploy PACKAGE=image`: dist/image.oci.tar pushed to ECR, deployed as an image function.

    read_image      the OCI archive `make image` wrote: its one manifest's digest and
                    architecture (index.json), checked against image.oci.tar.sha256
    Repository      IMAGE_REPOSITORY, <account>.dkr.ecr.<region>.amazonaws.com/<name>: it
                    must exist (DescribeRepositories) in the function's region
    push            skopeo copy --preserve-digests oci-archive:... docker://REPO:TAG, with
                    ECR's token (GetAuthorizationToken) in an auth file only this user can
                    read, removed after: never on a command line (other users' `ps` shows
                    those), never printed
    plan            create (PackageType Image, ImageUri REPO@<manifest digest>) or update
                    the code and the options given, as `make deploy` does for a zip
    verify          GetFunction's ImageUri is REPO@<digest> and ResolvedImageUri that digest

The function is given the image by digest, not by tag: a tag can be moved by the next push,
a digest names these bytes. Without IMAGE_REPOSITORY nothing is touched and the steps are
printed. A .zip function is never turned into an image one (Lambda cannot change a
function's package type).

    python -m build.image_deploy --function NAME --repository URI [--tag TAG]
                                 [--role ARN | --create-role] [--dry-run] ...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

import botocore.exceptions  # type: ignore[import-untyped]

from build.aws import Aws, Console, run_cli
from build.aws_errors import (
    DeployError,
    UsageError,
    error_code,
    is_role_not_ready,
    is_throttling,
)
from build.deploy.artifact import human_size
from build.deploy.cli import parser
from build.deploy.deployer import Deployer
from build.deploy.plan import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from build.deploy.role import RoleStep
from build.execution_role import FunctionRef

DEFAULT_IMAGE = Path("dist/image.oci.tar")
# OCI's architecture names, as Lambda names them.
LAMBDA_ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}
REPOSITORY = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<name>[a-z0-9][a-z0-9._/-]*)$"
)
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SKOPEO_MISSING = "skopeo not found: apt-get install skopeo (it pushes the image; no Docker needed)"


# --- the image ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    path: Path
    digest: str  # sha256:<hex> of its manifest: what a registry and Lambda call it by
    architecture: str  # as Lambda names it
    size: int


def read_image(path: Path) -> Image:
    if not path.is_file():
        raise DeployError(f"{path} not found: run `make build` and `make image` first")
    data = path.read_bytes()
    recorded = path.with_name(path.name + ".sha256")
    if recorded.is_file() and recorded.read_text().split()[:1] != [
        hashlib.sha256(data).hexdigest()
    ]:
        raise DeployError(f"{path} is not the image recorded in {recorded.name}: run `make image`")
    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("index.json")
            index = json.loads(member.read() if member else b"")
    except (tarfile.TarError, KeyError, ValueError):
        raise DeployError(f"{path} is not an OCI archive: run `make image` again") from None
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise DeployError(f"{path} holds {len(manifests)} images; `make image` writes one")
    (manifest,) = manifests
    oci_arch = manifest.get("platform", {}).get("architecture")
    if oci_arch not in LAMBDA_ARCHITECTURES:
        raise DeployError(f"{path} is for {oci_arch}; Lambda runs amd64 (x86_64) and arm64")
    return Image(path, manifest["digest"], LAMBDA_ARCHITECTURES[oci_arch], len(data))


# --- the repository and the push ---------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    account: str
    region: str
    name: str
    uri: str  # as given: the registry host and the repository's name

    @property
    def registry(self) -> str:
        return self.uri.split("/", 1)[0]

    @classmethod
    def parse(cls, uri: str) -> Repository:
        found = REPOSITORY.match(uri)
        if not found:
            raise UsageError(
                f"IMAGE_REPOSITORY={uri!r} is not an ECR repository: "
                "<account>.dkr.ecr.<region>.amazonaws.com/<name>"
            )
        return cls(found["account"], found["region"], found["name"], uri)


def check_repository(ecr: Any, repository: Repository) -> None:
    try:
        ecr.describe_repositories(registryId=repository.account, repositoryNames=[repository.name])
    except botocore.exceptions.ClientError as e:
        if error_code(e) == "RepositoryNotFoundException":
            raise DeployError(
                f"ECR repository {repository.name} does not exist in {repository.account} "
                f"{repository.region}: aws ecr create-repository --repository-name "
                f"{repository.name} --region {repository.region}"
            ) from None
        raise


def ecr_password(ecr: Any, repository: Repository, console: Console) -> str:
    """ECR's token, as `aws ecr get-login-password` gives it; hidden from the console first."""
    answer = ecr.get_authorization_token(registryIds=[repository.account])
    token = answer["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    console.hide(token, password)
    if user != "AWS" or not password:
        raise DeployError("ECR's GetAuthorizationToken gave no AWS password")
    return password


def skopeo_command(image: Image, reference: str, authfile: Path, digestfile: Path) -> list[str]:
    return [
        "skopeo",
        "copy",
        "--preserve-digests",  # refuse to push anything but these bytes
        "--dest-authfile",
        str(authfile),
        "--digestfile",
        str(digestfile),
        f"oci-archive:{image.path}",
        f"docker://{reference}",
    ]


def push(image: Image, repository: Repository, tag: str, password: str, console: Console) -> None:
    reference = f"{repository.uri}:{tag}"
    with tempfile.TemporaryDirectory(prefix="staticlambda-push-") as folder:
        authfile, digestfile = Path(folder) / "auth.json", Path(folder) / "digest"
        auth = base64.b64encode(f"AWS:{password}".encode()).decode()
        console.hide(auth)
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {repository.registry: {"auth": auth}}}, f)
        command = skopeo_command(image, reference, authfile, digestfile)
        console.info(f"pushing {image.path} to {reference} ({human_size(image.size)})")
        try:
            ran = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise DeployError(SKOPEO_MISSING) from None
        if ran.returncode != 0:
            raise DeployError(f"skopeo could not push to {reference}: {ran.stderr.strip()}")
        pushed = digestfile.read_text().strip() if digestfile.is_file() else ""
    if pushed != image.digest:
        raise DeployError(
            f"the registry has {reference} as {pushed or 'nothing'}, not {image.digest}"
        )
    console.info(f"pushed {reference}: {image.digest}")


# --- the function ------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    function_name: str
    image_uri: str  # REPO@sha256:...
    architecture: str
    memory_size: int | None
    timeout: int | None
    role: str | None


@dataclass(frozen=True)
class Plan:
    create: bool
    update_code: bool
    configuration: dict[str, Any]
    changes: list[str]

    @property
    def up_to_date(self) -> bool:
        return not (self.create or self.update_code or self.configuration)


def get_function(lambda_client: Any, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = lambda_client.get_function(FunctionName=name)
    except botocore.exceptions.ClientError as e:
        if error_code(e) == "ResourceNotFoundException":
            return None
        raise
    return found


def make_plan(current: Mapping[str, Any] | None, wanted: Wanted) -> Plan:
    """What to do, given GetFunction's answer (None: no such function)."""
    if current is None:
        return Plan(
            True,
            True,
            {},
            [
                f"ImageUri {wanted.image_uri}",
                f"MemorySize {wanted.memory_size or DEFAULT_MEMORY_MB}",
                f"Timeout {wanted.timeout or DEFAULT_TIMEOUT_S}",
                f"Architectures {wanted.architecture}",
            ],
        )
    configuration = current["Configuration"]
    if configuration.get("PackageType", "Zip") != "Image":
        raise DeployError(
            f"{wanted.function_name} is a .zip function, and Lambda cannot change a function's "
            "package type: deploy dist/function.zip (without PACKAGE=image) or pick another "
            "FUNCTION"
        )
    uri_now = current.get("Code", {}).get("ImageUri")
    arch_now = (configuration.get("Architectures") or ["x86_64"])[0]
    code = uri_now != wanted.image_uri or arch_now != wanted.architecture
    changes = []
    if uri_now != wanted.image_uri:
        changes.append(f"ImageUri {uri_now} -> {wanted.image_uri}")
    if arch_now != wanted.architecture:
        changes.append(f"Architectures {arch_now} -> {wanted.architecture}")
    asked = {"MemorySize": wanted.memory_size, "Timeout": wanted.timeout, "Role": wanted.role}
    update = {k: v for k, v in asked.items() if v is not None and configuration.get(k) != v}
    changes += [f"{k} {configuration.get(k)} -> {v}" for k, v in update.items()]
    return Plan(False, code, update, changes)


class ImageDeployer(Deployer):
    """deploy.Deployer's waits and retries, with an image for code."""

    def create_image_function(self, wanted: Wanted, role: str, role_is_ours: bool) -> None:
        params = {
            "FunctionName": wanted.function_name,
            "Role": role,
            "PackageType": "Image",
            "Code": {"ImageUri": wanted.image_uri},
            "Description": "staticlambda: Python in one static bootstrap, as an image",
            "MemorySize": wanted.memory_size or DEFAULT_MEMORY_MB,
            "Timeout": wanted.timeout or DEFAULT_TIMEOUT_S,
            "Architectures": [wanted.architecture],
        }
        self.console.info(f"creating {wanted.function_name}")
        retry_if = is_role_not_ready if role_is_ours else is_throttling
        self._retrying(lambda: self.lambda_client.create_function(**params), retry_if, attempts=10)
        self.wait("function_active_v2", wanted.function_name, "Active")

    def update_image_function(self, wanted: Wanted, plan: Plan, current: Mapping[str, Any]) -> None:
        name = wanted.function_name
        self.wait_for_update_in_progress(name, current["Configuration"])
        if plan.update_code:
            self.console.info(f"pointing {name} at {wanted.image_uri}")
            self.update_code(name, ImageUri=wanted.image_uri, Architectures=[wanted.architecture])
        self.update_configuration(name, plan.configuration)

    def verify_image(self, wanted: Wanted, image: Image) -> dict[str, Any]:
        """The function must run this image, by digest, on its architecture."""
        landed = get_function(self.lambda_client, wanted.function_name)
        if landed is None:
            raise DeployError(f"{wanted.function_name} vanished while being deployed")
        code = landed.get("Code", {})
        resolved = str(code.get("ResolvedImageUri") or "")
        if code.get("ImageUri") != wanted.image_uri or (
            resolved and not resolved.endswith("@" + image.digest)
        ):
            raise DeployError(
                f"Lambda reports image {resolved or code.get('ImageUri')} for "
                f"{wanted.function_name}, not {wanted.image_uri}"
            )
        arch = (landed["Configuration"].get("Architectures") or ["x86_64"])[0]
        if arch != wanted.architecture:
            raise DeployError(f"{wanted.function_name} runs on {arch}, not {wanted.architecture}")
        configuration: dict[str, Any] = landed["Configuration"]
        return configuration


# --- the command line --------------------------------------------------------------------


def image_parser() -> argparse.ArgumentParser:
    p = parser()
    p.prog = "python -m build.image_deploy"
    p.description = (
        "Push dist/image.oci.tar to an ECR repository with skopeo, then create or update a "
        "container-image Lambda function running it by digest."
    )
    p.add_argument(
        "--image", type=Path, default=DEFAULT_IMAGE, help=f"the OCI archive ({DEFAULT_IMAGE})"
    )
    p.add_argument(
        "--repository",
        metavar="URI",
        help="<account>.dkr.ecr.<region>.amazonaws.com/<name> (make: IMAGE_REPOSITORY=)",
    )
    p.add_argument(
        "--tag", help="the tag pushed (default: staticlambda-<digest>) (make: IMAGE_TAG=)"
    )
    return p


def steps(image: Image, function: str) -> str:
    """What PACKAGE=image does, for a user who has not given IMAGE_REPOSITORY."""
    return (
        f"no IMAGE_REPOSITORY: an image function runs an image from ECR. Make a repository "
        f"(aws ecr create-repository --repository-name {function}), then `make deploy "
        f"PACKAGE=image FUNCTION={function} IMAGE_REPOSITORY=<account>.dkr.ecr.<region>."
        f"amazonaws.com/{function}` pushes {image.path} ({image.digest}) with skopeo and "
        "creates or updates the function (ROLE= or CREATE_ROLE=1 to create it)"
    )


def wanted_from(args: argparse.Namespace, image: Image) -> tuple[Wanted, Repository, str]:
    if not args.function:
        raise UsageError("no function name: make deploy PACKAGE=image FUNCTION=<name>")
    FunctionRef.parse(args.function)
    if args.runtime or args.handler:
        raise UsageError(
            "RUNTIME and --handler are for .zip functions: an image function runs its "
            "ENTRYPOINT, /bootstrap"
        )
    if args.role and args.create_role:
        raise UsageError("give ROLE (--role) or --create-role, not both")
    if (args.role_name or args.permissions_boundary) and not args.create_role:
        raise UsageError("PERMISSIONS_BOUNDARY is for the role CREATE_ROLE=1 makes")
    if args.arch and args.arch != image.architecture:
        raise UsageError(
            f"ARCH={args.arch}, but {image.path} is {image.architecture}: rebuild, or drop ARCH"
        )
    if not args.repository:
        raise UsageError(steps(image, FunctionRef.parse(args.function).name))
    repository = Repository.parse(args.repository)
    tag = args.tag or f"staticlambda-{image.digest.split(':')[1][:12]}"
    if not TAG.match(tag):
        raise UsageError(f"IMAGE_TAG={tag!r} is not a tag an image registry accepts")
    uri = f"{repository.uri}@{image.digest}"
    wanted = Wanted(args.function, uri, image.architecture, args.memory, args.timeout, args.role)
    return wanted, repository, tag


def run(args: argparse.Namespace, console: Console, sleep: Callable[[float], Any]) -> int:
    image = read_image(args.image)
    wanted, repository, tag = wanted_from(args, image)
    console.info(
        f"{image.path}: {human_size(image.size)}, manifest {image.digest}, {image.architecture}"
    )
    try:
        aws = Aws.open(args.region, console)
    except UsageError:  # no region set anywhere: the repository's, which Lambda needs anyway
        aws = Aws.open(repository.region, console)
    if aws.region != repository.region:
        raise UsageError(
            f"IMAGE_REPOSITORY is in {repository.region}, the function in {aws.region}: Lambda "
            "runs images from its own region's ECR"
        )
    if not args.dry_run and shutil.which("skopeo") is None:
        raise DeployError(SKOPEO_MISSING)
    ecr, lambda_client = aws.client("ecr"), aws.client("lambda")
    check_repository(ecr, repository)
    function = FunctionRef.parse(args.function)
    current = get_function(lambda_client, wanted.function_name)
    plan = make_plan(current, wanted)
    if plan.create and not (args.role or args.create_role):
        raise UsageError(
            f"{wanted.function_name} does not exist in {aws.region}; creating it needs "
            "ROLE=<execution role ARN> (--role), or CREATE_ROLE=1"
        )
    role_step = RoleStep.look(aws, args, function) if plan.create and args.create_role else None
    verb = "would " if args.dry_run else ""
    console.info(
        f"{verb}push: skopeo copy --preserve-digests oci-archive:{image.path} "
        f"docker://{repository.uri}:{tag} (ECR's token for {repository.account} in a private "
        "auth file)"
    )
    name = wanted.function_name
    if plan.create:
        role = args.role or (role_step.describe() if role_step else "")
        console.info(
            f"{name} does not exist in {aws.region}: {verb}create it: PackageType Image, "
            f"role {role}, " + ", ".join(plan.changes)
        )
    elif plan.up_to_date:
        console.info(f"{name} is up to date: ImageUri {wanted.image_uri}, nothing to change")
    else:
        console.info(f"{name} exists in {aws.region}: {verb}update " + "; ".join(plan.changes))
    if args.dry_run:
        console.info("dry run: nothing was changed")
        return 0

    push(image, repository, tag, ecr_password(ecr, repository, console), console)
    deployer = ImageDeployer(lambda_client, console, sleep)
    if plan.create:
        role_arn: str = role_step.role_arn(console) if role_step else args.role
        deployer.create_image_function(wanted, role_arn, role_is_ours=args.create_role)
    elif current is not None and not plan.up_to_date:
        deployer.update_image_function(wanted, plan, current)
    landed = deployer.verify_image(wanted, image)
    what = "created" if plan.create else ("checked" if plan.up_to_date else "updated")
    console.info(
        f"{what} {landed.get('FunctionArn', name)}: runs {wanted.image_uri} ({image.architecture})"
    )
    return 0


def main(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> int:
    console = Console(out or sys.stdout, err or sys.stderr)
    return run_cli(
        console,
        os.environ if environ is None else environ,
        lambda: image_parser().parse_args(argv),
        lambda args: run(args, console, sleep),
    )


if __name__ == "__main__":
    sys.exit(main())
