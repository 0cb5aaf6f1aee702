"""The repository and the push: IMAGE_REPOSITORY checked to exist in ECR, then the image
copied there by skopeo, byte for byte (its digest kept), with ECR's token in a file only
this user can read, removed after: never on a command line (other users' `ps` shows
those), never printed."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions  # type: ignore[import-untyped]

from build.aws import Console
from build.aws_errors import DeployError, UsageError, error_code
from build.deploy.artifact import human_size
from build.deploy.image import Image

REPOSITORY = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<name>[a-z0-9][a-z0-9._/-]*)$"
)
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SKOPEO_MISSING = "skopeo not found: apt-get install skopeo (it pushes the image; no Docker needed)"


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

    def check_exists(self, ecr: Any) -> None:
        """DescribeRepositories: a missing repository is one line that says how to make it."""
        try:
            ecr.describe_repositories(registryId=self.account, repositoryNames=[self.name])
        except botocore.exceptions.ClientError as e:
            if error_code(e) == "RepositoryNotFoundException":
                raise DeployError(
                    f"ECR repository {self.name} does not exist in {self.account} "
                    f"{self.region}: aws ecr create-repository --repository-name "
                    f"{self.name} --region {self.region}"
                ) from None
            raise

    def password(self, ecr: Any, console: Console) -> str:
        """ECR's token, as `aws ecr get-login-password` gives it; hidden from the console
        first."""
        answer = ecr.get_authorization_token(registryIds=[self.account])
        token = answer["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
        console.hide(token, password)
        if user != "AWS" or not password:
            raise DeployError("ECR's GetAuthorizationToken gave no AWS password")
        return password


def image_tag(image: Image, given: str | None) -> str:
    """IMAGE_TAG, or one named after the image's digest; refused if a registry would."""
    tag = given or f"staticlambda-{image.digest.split(':')[1][:12]}"
    if not TAG.match(tag):
        raise UsageError(f"IMAGE_TAG={tag!r} is not a tag an image registry accepts")
    return tag


def require_skopeo() -> None:
    """Before anything is changed: without skopeo nothing can be pushed."""
    if shutil.which("skopeo") is None:
        raise DeployError(SKOPEO_MISSING)


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
