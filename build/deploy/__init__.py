"""`make deploy`: put dist/function.zip, or with PACKAGE=image dist/image.oci.tar, on AWS
Lambda, then prove the code that landed is ours.

    read_artifact   function.zip: its CodeSha256 (base64 sha256, as Lambda reports it), the
                    ELF machine of its `bootstrap`, the handler from bootstrap.handler; it
                    must match the hex sha256 the build wrote to function.zip.sha256
    read_image      image.oci.tar: its one manifest's digest and architecture, checked
                    against image.oci.tar.sha256
    push            the image to ECR (IMAGE_REPOSITORY) with skopeo, by digest, ECR's token
                    in a file only this user reads, never on a command line
    make_plan       from GetFunction's answer: create, or update code and/or configuration,
                    or nothing at all (make_image_plan: the same for an image function)
    RoleStep        with --create-role, the role looked at before anything is written
                    (build/execution_role.py): reused only if this deploy made it
    Deployer        CreateFunction, or UpdateFunctionCode then UpdateFunctionConfiguration,
                    each followed by Lambda's own waiter (function_active_v2 /
                    function_updated_v2); then verify CodeSha256 (ZipDeployer) or the
                    image's digest (ImageDeployer), and the architecture

One module each: artifact.py, image.py, ecr.py, plan.py, role.py, deployer.py; cli.py (the
options, the plan in words, the run; __main__.py calls it), image_cli.py (the plan for an
image). The session, the redacting console and the one-line error exit are build/aws.py's,
shared with remote_invoke.

    python -m build.deploy --function NAME [--role ARN | --create-role] [--dry-run] ...
    python -m build.deploy --function NAME --image dist/image.oci.tar --repository URI
                           [--tag TAG] [--role ARN | --create-role] [--dry-run] ...

Exit status: 0 deployed or already up to date, 1 AWS or artifact failure, 2 usage error.
This is the only stage that imports boto3: the build never imports it. No endpoint_url is
set here, so AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_IAM aim every
call at another server (a local AWS emulator), as botocore reads them itself.
"""

from __future__ import annotations

from build.aws import SECRET_VARIABLES, Aws, Console, Parser, guarded
from build.deploy.artifact import (
    Artifact,
    code_sha256,
    elf_architecture,
    human_size,
    read_artifact,
)
from build.deploy.cli import main, parser, run
from build.deploy.deployer import (
    Deployer,
    ImageDeployer,
    ZipDeployer,
    describe_state,
    get_configuration,
)
from build.deploy.plan import (
    DEFAULT_MEMORY_MB,
    DEFAULT_RUNTIME,
    DEFAULT_TIMEOUT_S,
    Plan,
    Wanted,
    make_plan,
)
from build.deploy.role import RoleStep

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_RUNTIME",
    "DEFAULT_TIMEOUT_S",
    "SECRET_VARIABLES",
    "Artifact",
    "Aws",
    "Console",
    "Deployer",
    "ImageDeployer",
    "Parser",
    "Plan",
    "RoleStep",
    "Wanted",
    "ZipDeployer",
    "code_sha256",
    "describe_state",
    "elf_architecture",
    "get_configuration",
    "guarded",
    "human_size",
    "main",
    "make_plan",
    "parser",
    "read_artifact",
    "run",
]
