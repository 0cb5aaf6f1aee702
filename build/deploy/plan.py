"""The plan: from GetFunction's answer, create, or update code and/or configuration, or nothing;
for a .zip function (make_plan) and for an image one (make_image_plan)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from build.aws_errors import (
    DeployError,
    UsageError,
)
from build.deploy.artifact import Artifact

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

LATEST_PUBLISHED = "LATEST_PUBLISHED"


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
    # The function's environment declared at build (build/function_env.py); None: not
    # declared, so the function's variables are left as they are.
    environment: dict[str, str] | None = None


def environment_changes(now: Mapping[str, str], wanted: Mapping[str, str]) -> str:
    """What an update does to the variables, by name: values may be secrets."""
    said = [
        f"{verb} {', '.join(names)}"
        for verb, names in (
            ("add", sorted(wanted.keys() - now.keys())),
            ("change", sorted(k for k in wanted.keys() & now.keys() if wanted[k] != now[k])),
            ("remove", sorted(now.keys() - wanted.keys())),
        )
        if names
    ]
    return "Environment: " + "; ".join(said)


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
    upload_code: bool  # UpdateFunctionCode is due: a new zip, or an image by a new digest
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
    if wanted.environment:
        settings["Environment"] = {"Variables": dict(wanted.environment)}
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
    The environment, when the build declared one, is the function's whole environment:
    set when it differs, in one UpdateFunctionConfiguration, and said by name only.
    """
    if current is None:
        settings = creation_settings(wanted, artifact)
        described = [
            f"Environment {', '.join(sorted(v['Variables']))}"
            if k == "Environment"
            else f"{k} {v[0] if isinstance(v, list) else v}"
            for k, v in settings.items()
        ]
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
    variables_now = (current.get("Environment") or {}).get("Variables") or {}
    if wanted.environment is not None and variables_now != wanted.environment:
        configuration["Environment"] = {"Variables": dict(wanted.environment)}
        changes.append(environment_changes(variables_now, wanted.environment))
    return Plan(False, upload, configuration, changes)


@dataclass(frozen=True)
class ImageWanted:
    """An image function as asked for; None where the option was not given."""

    function_name: str
    image_uri: str  # REPO@sha256:...: by digest, as a tag can be moved by the next push
    architecture: str
    memory_size: int | None
    timeout: int | None
    role: str | None


def make_image_plan(current: Mapping[str, Any] | None, wanted: ImageWanted) -> Plan:
    """What to do, given GetFunction's whole answer (None: no such function)."""
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
