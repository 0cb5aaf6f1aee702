"""`python -m build.deploy --image ...` (`make deploy PACKAGE=image`): the image's options
checked, the plan in words, the push, and the run.

    read_image      dist/image.oci.tar: its one manifest's digest and architecture
    Repository      IMAGE_REPOSITORY, <account>.dkr.ecr.<region>.amazonaws.com/<name>: it
                    must exist (DescribeRepositories) in the function's region
    push            skopeo copy --preserve-digests, with ECR's token (GetAuthorizationToken)
                    in an auth file only this user can read (ecr.py)
    plan            create (PackageType Image, ImageUri REPO@<manifest digest>) or update
                    the code and the options given, as for a zip
    verify          GetFunction's ImageUri is REPO@<digest> and ResolvedImageUri that digest

The function is given the image by digest, not by tag: a tag can be moved by the next push,
a digest names these bytes. Without IMAGE_REPOSITORY nothing is touched and the steps are
printed. A .zip function is never turned into an image one (Lambda cannot change a
function's package type).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from build.aws import Aws, Console
from build.aws_errors import UsageError
from build.deploy.artifact import human_size
from build.deploy.deployer import ImageDeployer, get_function
from build.deploy.ecr import Repository, image_tag, push, require_skopeo
from build.deploy.image import DEFAULT_IMAGE, Image, read_image
from build.deploy.plan import ImageWanted, Plan, make_image_plan
from build.deploy.role import RoleStep
from build.execution_role import FunctionRef


def steps(image: Image, function: str) -> str:
    """What PACKAGE=image does, for a user who has not given IMAGE_REPOSITORY."""
    return (
        f"no IMAGE_REPOSITORY: an image function runs an image from ECR. Make a repository "
        f"(aws ecr create-repository --repository-name {function}), then `make deploy "
        f"PACKAGE=image FUNCTION={function} IMAGE_REPOSITORY=<account>.dkr.ecr.<region>."
        f"amazonaws.com/{function}` pushes {image.path} ({image.digest}) with skopeo and "
        "creates or updates the function (ROLE= or CREATE_ROLE=1 to create it)"
    )


def image_wanted_from(
    args: argparse.Namespace, image: Image
) -> tuple[ImageWanted, FunctionRef, Repository, str]:
    if not args.function:
        raise UsageError("no function name: make deploy PACKAGE=image FUNCTION=<name>")
    function = FunctionRef.parse(args.function)
    if args.runtime or args.handler:
        raise UsageError(
            "RUNTIME and --handler are for .zip functions: an image function runs its "
            "ENTRYPOINT, /bootstrap"
        )
    if args.env_file is not None or args.env is not None:
        raise UsageError(
            "ENV_FILE/ENV are deployed with a .zip function only: set an image function's "
            "variables in its configuration (console, SAM, CDK, Terraform)"
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
        raise UsageError(steps(image, function.name))
    repository = Repository.parse(args.repository)
    tag = image_tag(image, args.tag)
    uri = f"{repository.uri}@{image.digest}"
    wanted = ImageWanted(
        args.function, uri, image.architecture, args.memory, args.timeout, args.role
    )
    return wanted, function, repository, tag


def describe_image_plan(
    plan: Plan, wanted: ImageWanted, region: str, verb: str, role: str | None
) -> str:
    name = wanted.function_name
    if plan.create:
        return (
            f"{name} does not exist in {region}: {verb}create it: PackageType Image, "
            f"role {role}, " + ", ".join(plan.changes)
        )
    if plan.up_to_date:
        return f"{name} is up to date: ImageUri {wanted.image_uri}, nothing to change"
    return f"{name} exists in {region}: {verb}update " + "; ".join(plan.changes)


def plan_image(
    args: argparse.Namespace, console: Console, sleep: Callable[[float], Any]
) -> Callable[[], None]:
    """Everything checked and nothing changed: the plan said, and what carries it out (the
    push, then the function)."""
    image = read_image(args.image or DEFAULT_IMAGE)
    wanted, function, repository, tag = image_wanted_from(args, image)
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
    if not args.dry_run:
        require_skopeo()
    ecr, lambda_client = aws.client("ecr"), aws.client("lambda")
    repository.check_exists(ecr)
    current = get_function(lambda_client, wanted.function_name)
    plan = make_image_plan(current, wanted)
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
    role = args.role or (role_step.describe() if role_step else "")
    console.info(describe_image_plan(plan, wanted, aws.region, verb, role))
    deployer = ImageDeployer(lambda_client, console, wanted, image, sleep)

    def carry_out() -> None:
        push(image, repository, tag, repository.password(ecr, console), console)
        deployer.apply(plan, current, role_step, args.role)

    return carry_out
