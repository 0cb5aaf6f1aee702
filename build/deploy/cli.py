"""`python -m build.deploy`: the options, the plan in words, and the run, for a zip; for an
image (`make deploy PACKAGE=image`) the plan is image_cli.py's.

The function's environment is the one the build declared and checked the zip's bootstrap
with (dist/bootstrap.environment.json, build/function_env.py): ENV_FILE or ENV given
here must be that same one, so a deploy never sets variables its init was not checked
with. A zip of the default echo handler is not deployed over a function that runs
another handler unless FORCE=1: `make zip && make deploy` after a build that never
happened would otherwise replace the function with echo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, TextIO

from build import execution_role
from build.aws import Aws, Console, Parser, run_cli
from build.aws_errors import DeployError, UsageError
from build.deploy.artifact import (
    ARCH_ALIASES,
    DEFAULT_ZIP,
    HANDLER_FILE,
    Artifact,
    human_size,
    read_artifact,
)
from build.deploy.deployer import ZipDeployer, get_configuration
from build.deploy.image import DEFAULT_IMAGE
from build.deploy.image_cli import plan_image
from build.deploy.plan import (
    DEFAULT_MEMORY_MB,
    DEFAULT_RUNTIME,
    DEFAULT_TIMEOUT_S,
    RUNTIME_WARNINGS,
    RUNTIMES,
    Plan,
    Wanted,
    make_plan,
)
from build.deploy.role import RoleStep
from build.errors import BuildError
from build.execution_role import FunctionRef
from build.function_env import declared, read_environment
from build.paths import DEFAULT_HANDLER
from build.record import RECORD

ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$")
# Lambda Managed Instances: botocore's pattern for CapacityProviderArn.
CAPACITY_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:capacity-provider:[a-zA-Z0-9_-]+$"
)


def architecture(value: str) -> str:
    if value.lower() not in ARCH_ALIASES:
        raise argparse.ArgumentTypeError(f"{value!r} is not x86_64 or arm64")
    return ARCH_ALIASES[value.lower()]


def bounded(low: int, high: int, unit: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of {unit}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is outside Lambda's {low}-{high} {unit}")
        return number

    return parse


def parser() -> Parser:
    p = Parser(
        prog="python -m build.deploy",
        description="Create or update a Lambda function from dist/function.zip (or from "
        "dist/image.oci.tar pushed to ECR), wait until Lambda is ready, and check that the code "
        "it reports is what was built: the zip's CodeSha256, the image's digest.",
        epilog="Exit status: 0 done, 1 AWS or artifact failure, 2 usage error. Credentials, "
        "region and endpoints come as for the AWS CLI (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL_IAM, ...).",
    )
    p.add_argument("--function", "-f", metavar="NAME", help="the function's name (make: FUNCTION=)")
    p.add_argument("--role", metavar="ARN", help="execution role, needed to create (make: ROLE=)")
    p.add_argument(
        "--create-role",
        action="store_true",
        help="on create, make an execution role that may only write the function's own log "
        "group (or reuse one this made for it; any other role of that name is refused) "
        "(make: CREATE_ROLE=1)",
    )
    p.add_argument(
        "--role-name",
        metavar="NAME",
        type=execution_role.check_role_name,
        help="name for --create-role (default: staticlambda-NAME, hashed when over 64)",
    )
    p.add_argument(
        "--permissions-boundary",
        metavar="POLICY_ARN",
        type=execution_role.check_boundary,
        help="permissions boundary for the role --create-role makes (make: PERMISSIONS_BOUNDARY=)",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help=f"OS-only runtime; {DEFAULT_RUNTIME} on create, unchanged on update if not given "
        "(make: RUNTIME=)",
    )
    p.add_argument(
        "--arch",
        type=architecture,
        metavar="{x86_64,arm64}",
        help="refuse to deploy unless bootstrap is built for it (default: what bootstrap is; "
        "make: ARCH=)",
    )
    p.add_argument(
        "--region", help="AWS region (default: AWS_REGION or the profile's; make: REGION=)"
    )
    # Within Lambda's own bounds; on update, a setting not given is left as it is.
    for option, unit, low, high, what, default in (
        ("--memory", "MB", 128, 10240, "memory size", DEFAULT_MEMORY_MB),
        ("--timeout", "seconds", 1, 900, "timeout", DEFAULT_TIMEOUT_S),
    ):
        p.add_argument(
            option,
            type=bounded(low, high, unit),
            metavar=unit.upper(),
            help=f"{what}; {default} on create, unchanged on update if not given "
            f"(make: {option[2:].upper()}=)",
        )
    p.add_argument(
        "--capacity-provider",
        metavar="ARN",
        help="Lambda Managed Instances: run on this capacity provider (make: CAPACITY_PROVIDER=)",
    )
    p.add_argument(
        "--max-concurrency",
        type=bounded(1, 1600, "invokes"),
        metavar="N",
        help="Lambda Managed Instances: invokes one execution environment serves at once "
        "(make: MAX_CONCURRENCY=)",
    )
    p.add_argument(
        "--handler",
        help=f"handler name to give Lambda (default: dist/{HANDLER_FILE}, else {DEFAULT_HANDLER})",
    )
    p.add_argument("--zip", type=Path, help=f"the package (default: {DEFAULT_ZIP})")
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="must be the ENV_FILE the zip was built with; the environment deployed is the "
        "build's (make: ENV_FILE=)",
    )
    p.add_argument(
        "--env",
        metavar="'NAME=value ...'",
        help="must be the ENV the zip was built with (make: ENV=)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="deploy the default echo handler even over a function that runs another "
        "(make: FORCE=1)",
    )
    image = p.add_argument_group(
        "a container-image function (make deploy PACKAGE=image)",
        "Any of these deploys an image instead of a zip: pushed to ECR with skopeo, run by "
        "its digest.",
    )
    image.add_argument(
        "--image", type=Path, help=f"the OCI archive `make image` wrote ({DEFAULT_IMAGE})"
    )
    image.add_argument(
        "--repository",
        metavar="URI",
        help="<account>.dkr.ecr.<region>.amazonaws.com/<name> (make: IMAGE_REPOSITORY=)",
    )
    image.add_argument(
        "--tag", help="the tag pushed (default: staticlambda-<digest>) (make: IMAGE_TAG=)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would change; change nothing (make: DRY_RUN=1)",
    )
    p.add_argument("--debug", action="store_true", help="print each AWS call (never credentials)")
    return p


def wanted_from(args: argparse.Namespace, artifact: Artifact, console: Console) -> Wanted:
    if not args.function:
        raise UsageError("no function name: make deploy FUNCTION=<name> (--function NAME)")
    FunctionRef.parse(args.function)
    if args.role and args.create_role:
        raise UsageError("give ROLE (--role) or --create-role, not both")
    if (args.role_name or args.permissions_boundary) and not args.create_role:
        option = "--role-name" if args.role_name else "PERMISSIONS_BOUNDARY"
        raise UsageError(
            f"{option} is for the role CREATE_ROLE=1 (--create-role) makes; a role given by "
            "ROLE= is used as it is"
        )
    if args.role and not ROLE_ARN.match(args.role):
        raise UsageError(
            f"ROLE must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not {args.role!r}"
        )
    if args.arch and args.arch != artifact.architecture:
        raise UsageError(
            f"ARCH={args.arch}, but bootstrap in {artifact.path} is built for "
            f"{artifact.architecture}: rebuild for {args.arch}, or drop ARCH"
        )
    if args.capacity_provider and not CAPACITY_PROVIDER_ARN.match(args.capacity_provider):
        raise UsageError(
            "CAPACITY_PROVIDER must be a capacity provider ARN (arn:aws:lambda:<region>:"
            f"<account>:capacity-provider:<name>), not {args.capacity_provider!r}"
        )
    handler = args.handler or artifact.handler
    if handler is None:
        handler = DEFAULT_HANDLER
        # The frozen bootstrap runs the handler it was built with; Lambda's field only shows it.
        console.notice(
            f"no {artifact.path.parent / HANDLER_FILE}; telling Lambda the handler is {handler}"
        )
    return Wanted(
        args.function,
        handler,
        args.runtime,
        args.memory,
        args.timeout,
        args.role,
        args.capacity_provider,
        args.max_concurrency,
        built_environment(args, artifact),
    )


def built_environment(args: argparse.Namespace, artifact: Artifact) -> dict[str, str] | None:
    """The environment the build checked the zip's bootstrap with; None when it was given
    none (the function's variables are then left as they are)."""
    dist = artifact.path.parent
    try:
        record = json.loads((dist / RECORD).read_text())
    except (OSError, ValueError):
        record = None  # a zip made elsewhere: no environment was declared for it
    try:
        checked = read_environment(dist) if record is not None else None
        if record is not None and record.get("bootstrap_sha256") != artifact.bootstrap_sha256:
            raise DeployError(
                f"{artifact.path} holds another bootstrap than the last build in {dist} "
                "(it did not finish, or was another): run `make zip` again"
            )
        inputs = (record or {}).get("inputs", {})
        env_file, env = str(inputs.get("env_file", "")), str(inputs.get("env", ""))
        # The build's ENV_FILE, where this machine sees it, must still say what was checked.
        if env_file and Path(env_file).is_file() and declared(env_file, env) != checked:
            raise UsageError(
                f"ENV_FILE={env_file} changed since the build checked it: run `make zip` "
                "again (its init check runs with the new values), then deploy"
            )
        if args.env_file is not None or args.env is not None:
            given = declared(
                str(Path(args.env_file).resolve()) if args.env_file else "", args.env or ""
            )
            if given != checked:
                raise UsageError(
                    f"ENV_FILE/ENV differ from the environment {artifact.path} was built and "
                    "checked with: run `make zip` with them first, then deploy"
                )
    except BuildError as e:
        raise UsageError(str(e)) from None
    return checked


def refuse_echo_over(
    current: Mapping[str, Any] | None, artifact: Artifact, args: argparse.Namespace
) -> None:
    """The default echo handler never silently replaces a function's own handler."""
    running = (current or {}).get("Handler")
    built = artifact.handler or DEFAULT_HANDLER
    if args.force or built != DEFAULT_HANDLER or running in (None, DEFAULT_HANDLER):
        return
    raise UsageError(
        f"{args.function} runs HANDLER={running}, but {artifact.path} is the default echo "
        f"handler: build yours first (make zip HANDLER={running} SRC=<its folder>), or FORCE=1 "
        "to deploy echo over it"
    )


def describe_plan(
    plan: Plan, args: argparse.Namespace, region: str, sha: str, role: str | None = None
) -> str:
    """``role``: how the role to create the function with was described, if CREATE_ROLE."""
    name, verb = args.function, "would " if args.dry_run else ""
    if plan.create:
        return f"{name} does not exist in {region}: {verb}create it: role {args.role or role}, " + (
            ", ".join(plan.changes)
        )
    if plan.up_to_date:
        return f"{name} is up to date: CodeSha256 {sha}, nothing to change"
    return f"{name} exists in {region}: {verb}update " + "; ".join(plan.changes)


def wants_image(args: argparse.Namespace) -> bool:
    return any(value is not None for value in (args.image, args.repository, args.tag))


def run(args: argparse.Namespace, console: Console, sleep: Callable[[float], Any]) -> int:
    """Plan a zip, or with any of the image's options an image (image_cli.py), and say the
    plan; then, unless it is a dry run, carry it out."""
    if wants_image(args) and args.zip is not None:
        raise UsageError("give --zip (a .zip function) or --image (PACKAGE=image), not both")
    carry_out = (plan_image if wants_image(args) else plan_zip)(args, console, sleep)
    if args.dry_run:
        console.info("dry run: nothing was changed")
        return 0
    carry_out()
    return 0


def plan_zip(
    args: argparse.Namespace, console: Console, sleep: Callable[[float], Any]
) -> Callable[[], None]:
    """Everything checked and nothing changed: the plan said, and what carries it out."""
    artifact = read_artifact(args.zip or DEFAULT_ZIP)
    wanted = wanted_from(args, artifact, console)
    console.info(
        f"{artifact.path}: {human_size(artifact.size)}, CodeSha256 {artifact.code_sha256}, "
        f"bootstrap {artifact.architecture}, handler {wanted.handler}"
    )
    console.info(
        f"deploying handler {wanted.handler}: bootstrap sha256 {artifact.bootstrap_sha256}"
        + (
            f", environment {', '.join(sorted(wanted.environment)) or '(empty)'}"
            if wanted.environment is not None
            else ""
        )
    )
    aws = Aws.open(args.region, console)
    function = FunctionRef.parse(args.function)
    if function.region and function.region != aws.region:
        raise UsageError(
            f"FUNCTION is in {function.region}, but the region is {aws.region}: "
            f"pass REGION={function.region}"
        )
    lambda_client = aws.client("lambda")
    name = wanted.function_name
    current = get_configuration(lambda_client, name)
    refuse_echo_over(current, artifact, args)
    plan = make_plan(current, wanted, artifact)
    runtime = wanted.runtime or (current or {}).get("Runtime") or DEFAULT_RUNTIME
    if runtime in RUNTIME_WARNINGS:
        console.warn(RUNTIME_WARNINGS[runtime])
    if plan.create and not (args.role or args.create_role):
        raise UsageError(
            f"{name} does not exist in {aws.region}; creating it needs ROLE=<execution role ARN> "
            "(--role), or --create-role"
        )
    if args.create_role and not plan.create:
        console.notice(f"{name} exists and keeps its role: CREATE_ROLE is used only to create")
    role_step = RoleStep.look(aws, args, function) if plan.create and args.create_role else None
    role_words = role_step.describe() if role_step else None
    console.info(describe_plan(plan, args, aws.region, artifact.code_sha256, role_words))
    deployer = ZipDeployer(lambda_client, console, wanted, artifact, sleep)
    return lambda: deployer.apply(plan, current, role_step, args.role)


def main(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> int:
    """Run the command; returns the exit status. ``environ`` names the secrets to hide."""
    console = Console(out or sys.stdout, err or sys.stderr)
    return run_cli(
        console,
        os.environ if environ is None else environ,
        lambda: parser().parse_args(argv),
        lambda args: run(args, console, sleep),
    )
