"""`make deploy`: put dist/function.zip on AWS Lambda, then prove the code that landed is ours.

    read_artifact   function.zip: its CodeSha256 (base64 sha256, as Lambda reports it), the
                    ELF machine of its `bootstrap`, the handler from bootstrap.handler; it
                    must match the hex sha256 the build wrote to function.zip.sha256
    make_plan       from GetFunction's answer: create, or update code and/or configuration,
                    or nothing at all
    RoleStep        with --create-role, the role looked at before anything is written
                    (build/execution_role.py): reused only if this deploy made it
    Deployer        CreateFunction, or UpdateFunctionCode then UpdateFunctionConfiguration,
                    each followed by Lambda's own waiter (function_active_v2 /
                    function_updated_v2); then verify CodeSha256 and architecture

    python -m build.deploy --function NAME [--role ARN | --create-role] [--dry-run] ...

Exit status: 0 deployed or already up to date, 1 AWS or artifact failure, 2 usage error.
This is the only stage that imports boto3: the build never imports it. No endpoint_url is
set here, so AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_IAM aim every
call at another server (a local AWS emulator), as botocore reads them itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import struct
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn, TextIO
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from build import execution_role
from build.aws_errors import (
    NO_CREDENTIALS,
    NO_REGION,
    THROTTLING,
    DeployError,
    UsageError,
    error_code,
    explain,
    is_role_not_ready,
    is_throttling,
    is_update_in_progress,
    with_retries,
)
from build.execution_role import FunctionRef, RoleSpec
from build.redaction import Redactor

DEFAULT_ZIP = Path("dist/function.zip")
HANDLER_FILE = "bootstrap.handler"  # written by the build beside function.zip
DEFAULT_HANDLER = "handlers.echo.handler"
DEFAULT_RUNTIME = "provided.al2023"
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3

# The static bootstrap needs no library from the OS, so it runs on all three.
RUNTIMES = ("provided.al2023", "provided.al2", "provided")
RUNTIME_WARNINGS = {
    "provided": "AWS has ended support for the `provided` runtime (Amazon Linux 1) and has "
    "refused to create functions on it since 2024; use provided.al2023",
    "provided.al2": "AWS is ending support for provided.al2 (Amazon Linux 2) and refuses to "
    "create functions on it from mid-2026; use provided.al2023",
}

# ELF e_machine values of the two instruction sets Lambda runs.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}

# Lambda's quotas for a .zip package sent in the request itself (not through S3).
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$")
# Lambda Managed Instances: botocore's pattern for CapacityProviderArn.
LATEST_PUBLISHED = "LATEST_PUBLISHED"
CAPACITY_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:capacity-provider:[a-zA-Z0-9_-]+$"
)

# Standard retries: botocore backs off on throttling and transient errors in each call.
# A 50 MB upload can take Lambda a while to answer, hence the longer read timeout.
AWS_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 5},
    read_timeout=120,
    user_agent_appid="staticlambda",
)

# The variables whose values are hidden from every line printed, whatever prints it.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


class Console:
    """Where deploy speaks: progress to ``out``; notices, warnings and errors to ``err``.

    Every line goes through ``redact``: once a credential's value is known, it never
    reaches the terminal, not in --debug output, not inside a message AWS sent back, not
    JSON-escaped, URL-encoded, base64 or hex (build/redaction.py).
    """

    def __init__(self, out: TextIO, err: TextIO, prog: str = "deploy", debug: bool = False):
        self.out, self.err, self.prog, self.debugging = out, err, prog, debug
        self._redactor = Redactor()

    def hide(self, *values: str | None) -> None:
        self._redactor.hide(*values)

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def _print(self, stream: TextIO, text: str) -> None:
        print(self.redact(text), file=stream, flush=True)

    def info(self, text: str) -> None:
        self._print(self.out, f"{self.prog}: {text}")

    def notice(self, text: str) -> None:
        self._print(self.err, f"{self.prog}: notice: {text}")

    def warn(self, text: str) -> None:
        self._print(self.err, f"{self.prog}: warning: {text}")

    def error(self, text: str) -> None:
        # One line, whatever came back: an emulator's HTML error page would be a screenful.
        line = " ".join(text.split())
        self._print(self.err, f"{self.prog}: error: {line[:600]}{'...' if len(line) > 600 else ''}")

    def debug(self, text: str) -> None:
        if self.debugging:
            self._print(self.err, f"{self.prog}: debug: {text}")


# --- the artifact ------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    path: Path
    zip_bytes: bytes = field(repr=False)
    code_sha256: str
    architecture: str
    handler: str | None  # None when the build left no bootstrap.handler

    @property
    def size(self) -> int:
        return len(self.zip_bytes)


def human_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def code_sha256(data: bytes) -> str:
    """base64(sha256(zip)): the form of CodeSha256 in Lambda's answers."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def elf_architecture(header: bytes) -> str:
    """The Lambda architecture of an ELF executable, from its first 20 bytes."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise DeployError("bootstrap in the zip is not an ELF executable")
    if header[4] != 2 or header[5] != 1:
        raise DeployError("bootstrap is not a 64-bit little-endian ELF; Lambda runs only those")
    (machine,) = struct.unpack_from("<H", header, 18)
    if machine not in ELF_MACHINES:
        raise DeployError(
            f"bootstrap is built for ELF machine {machine:#x}; Lambda runs x86_64 (0x3e) "
            "and arm64 (0xb7)"
        )
    return ELF_MACHINES[machine]


def read_handler(zip_path: Path) -> str | None:
    path = zip_path.parent / HANDLER_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def check_recorded_sha256(zip_path: Path, data: bytes) -> None:
    """The zip must still be the one the build hashed into function.zip.sha256, if it did."""
    recorded_file = zip_path.with_name(zip_path.name + ".sha256")
    try:
        recorded = recorded_file.read_text(encoding="utf-8").split()[:1]
    except FileNotFoundError:
        return
    hex_digest = recorded[0] if recorded and re.fullmatch(r"[0-9a-f]{64}", recorded[0]) else None
    if hex_digest is not None and hex_digest != hashlib.sha256(data).hexdigest():
        raise DeployError(
            f"{zip_path} is not the zip the build recorded in {recorded_file.name}: "
            "run `make zip` again"
        )


def read_artifact(zip_path: Path) -> Artifact:
    """The zip as it will be uploaded, checked against what Lambda accepts and runs."""
    if not zip_path.is_file():
        raise DeployError(f"{zip_path} not found: run `make zip` first")
    size = zip_path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise DeployError(
            f"{zip_path} is {size / 2**20:.1f} MiB; Lambda accepts at most 50 MiB uploaded "
            "directly (larger packages go through S3)"
        )
    # The bytes hashed are the bytes uploaded: one read, no window for the file to change.
    data = zip_path.read_bytes()
    try:
        with zipfile.ZipFile(zip_path) as z:
            unzipped = sum(info.file_size for info in z.infolist())
            try:
                info = z.getinfo("bootstrap")
            except KeyError:
                raise DeployError(f"{zip_path} has no `bootstrap` at its root") from None
            with z.open(info) as f:
                architecture = elf_architecture(f.read(64))
    except zipfile.BadZipFile:
        raise DeployError(f"{zip_path} is not a zip file: run `make zip` again") from None
    if unzipped > MAX_UNZIPPED_BYTES:
        raise DeployError(
            f"{zip_path} unzips to {unzipped / 2**20:.1f} MiB; Lambda's limit is 250 MiB"
        )
    check_recorded_sha256(zip_path, data)
    mode = info.external_attr >> 16
    # Zips made on Unix carry the mode; without the x bits Lambda cannot exec bootstrap.
    if info.create_system == 3 and mode and not mode & 0o111:
        raise DeployError(f"bootstrap in {zip_path} is not executable (mode {mode & 0o777:o})")
    return Artifact(zip_path, data, code_sha256(data), architecture, read_handler(zip_path))


# --- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """The function as asked for; None where the option was not given."""

    function_name: str  # as given: a name, an ARN, a qualified ARN
    handler: str
    runtime: str | None = None
    memory_size: int | None = None
    timeout: int | None = None
    role: str | None = None
    # Lambda Managed Instances: the capacity provider, and the invokes one
    # execution environment serves at once (AWS_LAMBDA_MAX_CONCURRENCY to the runtime).
    capacity_provider: str | None = None
    max_concurrency: int | None = None


def capacity_provider_config(
    wanted: Wanted, current: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """CapacityProviderConfig as CreateFunction and UpdateFunctionConfiguration take it;
    None when neither option was given. MAX_CONCURRENCY alone keeps the current provider."""
    if wanted.capacity_provider is None and wanted.max_concurrency is None:
        return None
    now = ((current or {}).get("CapacityProviderConfig") or {}).get(
        "LambdaManagedInstancesCapacityProviderConfig"
    ) or {}
    arn = wanted.capacity_provider or now.get("CapacityProviderArn")
    if arn is None:
        raise UsageError(
            f"MAX_CONCURRENCY needs a capacity provider: {wanted.function_name} is on none; "
            "give CAPACITY_PROVIDER=<arn> (--capacity-provider)"
        )
    config: dict[str, Any] = {**now, "CapacityProviderArn": arn}
    if wanted.max_concurrency is not None:
        config["PerExecutionEnvironmentMaxConcurrency"] = wanted.max_concurrency
    return {"LambdaManagedInstancesCapacityProviderConfig": config}


@dataclass(frozen=True)
class Plan:
    create: bool
    upload_code: bool
    configuration: dict[str, Any]  # the UpdateFunctionConfiguration fields that change
    changes: list[str]  # the same, for a person

    @property
    def up_to_date(self) -> bool:
        return not (self.create or self.upload_code or self.configuration)


def creation_settings(wanted: Wanted, artifact: Artifact) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "Runtime": wanted.runtime or DEFAULT_RUNTIME,
        "Handler": wanted.handler,
        "MemorySize": wanted.memory_size or DEFAULT_MEMORY_MB,
        "Timeout": wanted.timeout or DEFAULT_TIMEOUT_S,
        "Architectures": [artifact.architecture],
    }
    capacity = capacity_provider_config(wanted)
    if capacity is not None:
        settings["CapacityProviderConfig"] = capacity
        # Lambda invokes a Managed Instances function's published version
        # ($LATEST.PUBLISHED when called unqualified), never $LATEST.
        settings["PublishTo"] = LATEST_PUBLISHED
    return settings


def make_plan(current: Mapping[str, Any] | None, wanted: Wanted, artifact: Artifact) -> Plan:
    """What to do, given GetFunction's Configuration (None: no such function).

    On update, only the options given are compared: a memory size tuned in the console
    stays unless MEMORY is given. The handler and architecture always follow the artifact.
    """
    if current is None:
        settings = creation_settings(wanted, artifact)
        described = [f"{k} {v[0] if isinstance(v, list) else v}" for k, v in settings.items()]
        return Plan(True, True, {}, described)
    if current.get("PackageType", "Zip") != "Zip":
        raise DeployError(
            f"{wanted.function_name} is a container-image function; this deploys .zip"
        )
    runtime_now = current.get("Runtime")
    if wanted.runtime is None and runtime_now not in RUNTIMES:
        raise UsageError(
            f"{wanted.function_name} runs {runtime_now}, not an OS-only runtime; pass "
            f"RUNTIME={DEFAULT_RUNTIME} (--runtime) to switch it to the static bootstrap"
        )
    changes: list[str] = []
    arch_now = (current.get("Architectures") or ["x86_64"])[0]
    sha_now = current.get("CodeSha256")
    upload = sha_now != artifact.code_sha256 or arch_now != artifact.architecture
    if sha_now != artifact.code_sha256:
        changes.append(f"CodeSha256 {sha_now} -> {artifact.code_sha256}")
    if arch_now != artifact.architecture:
        changes.append(f"Architectures {arch_now} -> {artifact.architecture}")
    asked = {
        "Runtime": wanted.runtime,
        "Handler": wanted.handler,
        "MemorySize": wanted.memory_size,
        "Timeout": wanted.timeout,
        "Role": wanted.role,
        "CapacityProviderConfig": capacity_provider_config(wanted, current),
    }
    configuration = {k: v for k, v in asked.items() if v is not None and current.get(k) != v}
    changes += [f"{k} {current.get(k)} -> {v}" for k, v in configuration.items()]
    return Plan(False, upload, configuration, changes)


# --- AWS ---------------------------------------------------------------------------------


def known_regions(session: Any) -> set[str]:
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("lambda", partition_name=partition)
    }


@dataclass
class Aws:
    """One boto3 session, its credentials checked and hidden from the console."""

    session: Any
    console: Console

    @classmethod
    def open(cls, region: str | None, console: Console) -> Aws:
        # The AWS CLI (v2) and Lambda itself use AWS_REGION; boto3 reads only
        # AWS_DEFAULT_REGION and the profile, so AWS_REGION is honoured here.
        region = region or os.environ.get("AWS_REGION") or None
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
        if credentials is None:
            raise DeployError(NO_CREDENTIALS)
        frozen = credentials.get_frozen_credentials()
        console.hide(frozen.access_key, frozen.secret_key, frozen.token)
        console.debug(f"credentials from: {credentials.method}")
        if not session.region_name:
            raise UsageError(NO_REGION)
        return cls(session, console)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    @property
    def partition(self) -> str:
        """aws, aws-cn, aws-us-gov...: the second field of every ARN in the region."""
        try:
            return str(self.session.get_partition_for_region(self.region))
        except botocore.exceptions.UnknownRegionError:  # a local emulator's name: assume aws
            return "aws"

    def client(self, service: str) -> Any:
        client = self.session.client(service, config=AWS_CONFIG)
        endpoint = client.meta.endpoint_url
        host = urlsplit(endpoint).hostname or ""
        # A region botocore does not know, on AWS's own endpoint, is a typo: the DNS error
        # it would end in says less. A redirected endpoint may use any region name.
        if self.region not in known_regions(self.session) and self.region in host.split("."):
            raise UsageError(f"unknown AWS region {self.region!r} (check REGION / AWS_REGION)")
        self.console.debug(f"{service} endpoint: {endpoint} (region {self.region})")
        client.meta.events.register("after-call", self._log_call)
        return client

    def _log_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        # Operation, status and request id only: never headers, where the signature lives.
        meta = parsed.get("ResponseMetadata", {})
        code = parsed.get("Error", {}).get("Code")
        self.console.debug(
            f"{model.service_model.service_name}.{model.name} -> HTTP {http_response.status_code}"
            f"{' ' + code if code else ''} (request id {meta.get('RequestId', '-')}, "
            f"{meta.get('RetryAttempts', 0)} retries)"
        )


def get_configuration(lambda_client: Any, function_name: str) -> dict[str, Any] | None:
    try:
        configuration: dict[str, Any] = lambda_client.get_function(FunctionName=function_name)[
            "Configuration"
        ]
    except botocore.exceptions.ClientError as e:
        if error_code(e) == "ResourceNotFoundException":
            return None
        raise
    return configuration


def describe_state(configuration: Mapping[str, Any]) -> str:
    parts = [
        f"{key} {configuration[key]}"
        for key in ("State", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReasonCode")
        if configuration.get(key)
    ]
    reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason")
    return ", ".join(parts) + (f": {reason}" if reason else "") or "no state reported"


class Deployer:
    """Applies a plan through one Lambda client: the calls, the waits, the final check."""

    def __init__(
        self,
        lambda_client: Any,
        console: Console,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lambda_client = lambda_client
        self.console = console
        self.sleep = sleep
        self.clock = clock

    def _retrying(
        self, call: Callable[[], Any], retry_if: Callable[[BaseException], bool], attempts: int = 8
    ) -> Any:
        return with_retries(call, retry_if, self.console.info, self.sleep, attempts=attempts)

    def wait(self, waiter_name: str, function_name: str, goal: str) -> None:
        """Lambda's waiter, one poll at a time so that progress can be shown between polls."""
        waiter = self.lambda_client.get_waiter(waiter_name)
        delay, attempts = waiter.config.delay, waiter.config.max_attempts
        start, shown = self.clock(), ""
        for attempt in range(attempts):
            try:
                waiter.wait(
                    FunctionName=function_name, WaiterConfig={"Delay": delay, "MaxAttempts": 1}
                )
                self.console.info(f"{function_name} is {goal} ({self.clock() - start:.0f} s)")
                return
            except botocore.exceptions.WaiterError as e:
                reason = str(e.kwargs.get("reason", ""))
                last = e.last_response or {}
                throttled = last.get("Error", {}).get("Code") in THROTTLING
                if not (reason.startswith("Max attempts exceeded") or throttled):
                    state = (
                        describe_state(last.get("Configuration", {}))
                        if "Configuration" in last
                        else reason
                    )
                    raise DeployError(f"{function_name} is not {goal}: {state}") from None
                state = describe_state(last.get("Configuration", {}))
                # A line when the state changes, and every ten polls while it does not.
                if state != shown or attempt % 10 == 0:
                    self.console.info(
                        f"waiting for {function_name} to be {goal}: {state} "
                        f"({self.clock() - start:.0f} s)"
                    )
                    shown = state
            self.sleep(delay)
        raise DeployError(f"{function_name} was not {goal} after {delay * attempts} s")

    def create(self, wanted: Wanted, artifact: Artifact, role: str, role_is_ours: bool) -> None:
        params = {
            "FunctionName": wanted.function_name,
            "Role": role,
            "Code": {"ZipFile": artifact.zip_bytes},
            "PackageType": "Zip",
            "Description": "staticlambda: Python in one static bootstrap",
            **creation_settings(wanted, artifact),
        }
        self.console.info(f"creating {wanted.function_name}")
        # IAM is eventually consistent: a role made by --create-role (now, or by a run that
        # failed a moment ago) may take seconds to be assumable. A role the user named that
        # Lambda cannot assume is wrong, and waiting would not help.
        retry_if = is_role_not_ready if role_is_ours else is_throttling
        self._retrying(lambda: self.lambda_client.create_function(**params), retry_if, attempts=10)
        self.wait("function_active_v2", wanted.function_name, "Active")

    def update(
        self, wanted: Wanted, artifact: Artifact, plan: Plan, current: Mapping[str, Any]
    ) -> None:
        name = wanted.function_name
        if current.get("LastUpdateStatus") == "InProgress":
            self.console.info(f"{name} has an update in progress; waiting for it first")
            self.wait("function_updated_v2", name, "updated")
        if plan.upload_code:
            self.console.info(f"uploading code to {name} ({human_size(artifact.size)})")
            self._retrying(
                lambda: self.lambda_client.update_function_code(
                    FunctionName=name,
                    ZipFile=artifact.zip_bytes,
                    Architectures=[artifact.architecture],
                ),
                is_update_in_progress,
            )
            self.wait("function_updated_v2", name, "updated")
        if plan.configuration:
            self.console.info(
                f"updating the configuration of {name}: {', '.join(plan.configuration)}"
            )
            self._retrying(
                lambda: self.lambda_client.update_function_configuration(
                    FunctionName=name, **plan.configuration
                ),
                is_update_in_progress,
            )
            self.wait("function_updated_v2", name, "updated")
        if current.get("CapacityProviderConfig") or "CapacityProviderConfig" in plan.configuration:
            # Managed Instances serve $LATEST.PUBLISHED: what was just updated, published.
            self.console.info(f"publishing {name} to $LATEST.PUBLISHED")
            self._retrying(
                lambda: self.lambda_client.publish_version(
                    FunctionName=name, PublishTo=LATEST_PUBLISHED
                ),
                is_update_in_progress,
            )

    def verify(self, function_name: str, artifact: Artifact) -> dict[str, Any]:
        """The function's code must be the zip's, byte for byte, and its architecture too."""
        configuration = get_configuration(self.lambda_client, function_name)
        if configuration is None:
            raise DeployError(f"{function_name} vanished while being deployed")
        landed = configuration.get("CodeSha256")
        if landed != artifact.code_sha256:
            raise DeployError(
                f"Lambda reports CodeSha256 {landed} for {function_name}, but {artifact.path} "
                f"is {artifact.code_sha256}: the code that landed is not the code that was built"
            )
        arch = (configuration.get("Architectures") or ["x86_64"])[0]
        if arch != artifact.architecture:
            raise DeployError(
                f"{function_name} runs on {arch}, but bootstrap is {artifact.architecture}"
            )
        return configuration


# --- the command line --------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a UsageError) instead of two."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


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
        description="Create or update a Lambda function from dist/function.zip, wait until "
        "Lambda is ready, and check that the CodeSha256 it reports is the zip's.",
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
    p.add_argument(
        "--memory",
        type=bounded(128, 10240, "MB"),
        metavar="MB",
        help=f"memory size; {DEFAULT_MEMORY_MB} on create, unchanged on update if not given "
        "(make: MEMORY=)",
    )
    p.add_argument(
        "--timeout",
        type=bounded(1, 900, "seconds"),
        metavar="SECONDS",
        help=f"timeout; {DEFAULT_TIMEOUT_S} on create, unchanged on update if not given "
        "(make: TIMEOUT=)",
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
    p.add_argument(
        "--zip", type=Path, default=DEFAULT_ZIP, help=f"the package (default: {DEFAULT_ZIP})"
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


@dataclass
class RoleStep:
    """CREATE_ROLE's part of a plan, looked at before anything is written: a role of that
    name this deploy did not make stops it there, the dry run included."""

    iam: Any
    spec: RoleSpec
    reusable: str | None  # the ARN of a role this deploy made for the function earlier
    account: str | None  # for the plan's words, when known before the role is

    @classmethod
    def look(cls, aws: Aws, args: argparse.Namespace, function: FunctionRef) -> RoleStep:
        spec = RoleSpec(
            name=args.role_name or execution_role.role_name_for(function),
            function=function.name,
            region=aws.region,
            partition=aws.partition,
            boundary=args.permissions_boundary,
        )
        iam = aws.client("iam")
        reusable = execution_role.plan_role(iam, spec)
        account = function.account or (reusable and execution_role.account_of(reusable))
        return cls(iam, spec, reusable, account)

    def describe(self) -> str:
        if self.reusable:
            return (
                f"{self.reusable} (made by staticlambda for {self.spec.function}: reused as it is)"
            )
        return self.spec.describe_new(self.account)

    def role_arn(self, console: Console) -> str:
        if self.reusable:
            console.info(f"reusing role {self.reusable}")
            return self.reusable
        spec = self.spec
        description = f"Execution role of Lambda function {spec.function} (staticlambda)"
        arn, created = execution_role.create_role(self.iam, spec, description)
        if not created:
            console.info(f"reusing role {arn} (made by staticlambda for {spec.function}, checked)")
            return arn
        console.info(
            f"created role {arn}: trusts {execution_role.LAMBDA_SERVICE}, inline policy "
            f"{execution_role.LOGS_POLICY_NAME} on "
            f"{spec.log_group_arn(execution_role.account_of(arn))} only"
            + (f", permissions boundary {spec.boundary}" if spec.boundary else "")
        )
        return arn


def run(args: argparse.Namespace, console: Console, sleep: Callable[[float], Any]) -> int:
    artifact = read_artifact(args.zip)
    wanted = wanted_from(args, artifact, console)
    console.info(
        f"{artifact.path}: {human_size(artifact.size)}, CodeSha256 {artifact.code_sha256}, "
        f"bootstrap {artifact.architecture}, handler {wanted.handler}"
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
    if args.dry_run:
        console.info("dry run: nothing was changed")
        return 0

    deployer = Deployer(lambda_client, console, sleep)
    if plan.create:
        role: str = role_step.role_arn(console) if role_step else args.role
        deployer.create(wanted, artifact, role, role_is_ours=args.create_role)
    elif current is not None and not plan.up_to_date:
        deployer.update(wanted, artifact, plan, current)
    landed = deployer.verify(name, artifact)
    what = "created" if plan.create else ("checked" if plan.up_to_date else "updated")
    console.info(
        f"{what} {landed.get('FunctionArn', name)}: CodeSha256 {landed['CodeSha256']} matches "
        f"{artifact.path} ({landed.get('Runtime')}, {artifact.architecture})"
    )
    return 0


def main(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> int:
    """Run the command; returns the exit status. ``environ`` names the secrets to hide."""
    environ = os.environ if environ is None else environ
    console = Console(out or sys.stdout, err or sys.stderr)
    console.hide(*(environ.get(name) for name in SECRET_VARIABLES))

    def command() -> int:
        args = parser().parse_args(argv)
        console.debugging = args.debug
        return run(args, console, sleep)

    return guarded(console, command)


def guarded(console: Console, command: Callable[[], int]) -> int:
    """Run a command: every failure a user can cause is one line and an exit status
    (2: usage, 1: AWS or the artifact, 130: interrupted), never a traceback."""
    try:
        return command()
    except UsageError as e:
        console.error(str(e))
        return 2
    except DeployError as e:
        console.error(str(e))
        return 1
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        console.error(explain(e))
        return 1
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
