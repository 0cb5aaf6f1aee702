"""The deployer: a plan applied through one Lambda client, each call followed by Lambda's own
waiter, then what landed checked: a zip's CodeSha256 (Deployer), an image's digest
(ImageDeployer), and the architecture."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Callable, Generic, Protocol, TypeVar

import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from build.aws import Console
from build.aws_errors import (
    THROTTLING,
    DeployError,
    error_code,
    is_role_not_ready,
    is_throttling,
    is_update_in_progress,
    with_retries,
)
from build.deploy.artifact import Artifact, human_size
from build.deploy.image import Image
from build.deploy.plan import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    LATEST_PUBLISHED,
    ImageWanted,
    Plan,
    Wanted,
    creation_settings,
)
from build.deploy.role import RoleStep


def get_function(lambda_client: Any, function_name: str) -> dict[str, Any] | None:
    """GetFunction's answer (Configuration and Code); None when there is no such function."""
    try:
        found: dict[str, Any] = lambda_client.get_function(FunctionName=function_name)
    except botocore.exceptions.ClientError as e:
        if error_code(e) == "ResourceNotFoundException":
            return None
        raise
    return found


def get_configuration(lambda_client: Any, function_name: str) -> dict[str, Any] | None:
    found = get_function(lambda_client, function_name)
    return None if found is None else dict(found["Configuration"])


def describe_state(configuration: Mapping[str, Any]) -> str:
    parts = [
        f"{key} {configuration[key]}"
        for key in ("State", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReasonCode")
        if configuration.get(key)
    ]
    reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason")
    return ", ".join(parts) + (f": {reason}" if reason else "") or "no state reported"


class NamesAFunction(Protocol):
    @property
    def function_name(self) -> str: ...


WantedT = TypeVar("WantedT", bound=NamesAFunction)  # plan.Wanted, plan.ImageWanted
CodeT = TypeVar("CodeT")


class Deployer(ABC, Generic[WantedT, CodeT]):
    """Applies a plan through one Lambda client: the calls, the waits, the final check.

    What differs between a zip and an image (the create, update and verify calls) is a
    subclass's: ZipDeployer, ImageDeployer. The order, the waits and the retries are here.
    """

    def __init__(
        self,
        lambda_client: Any,
        console: Console,
        wanted: WantedT,
        code: CodeT,  # the zip (Artifact) or the image (Image)
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lambda_client = lambda_client
        self.console = console
        self.wanted, self.code = wanted, code
        self.sleep = sleep
        self.clock = clock
        # Run before each CreateFunction call: CREATE_ROLE's role is checked again there.
        self.check_role: Callable[[], None] = lambda: None

    def apply(
        self, plan: Plan, current: Mapping[str, Any] | None, role_step: RoleStep | None, role: str
    ) -> None:
        """Create (with ``role``, or the role ``role_step`` makes or reuses) or update as the
        plan says, or nothing; then check what landed, and say so."""
        if plan.create:
            arn = role_step.role_arn(self.console) if role_step else role
            if role_step is not None:
                self.check_role = lambda: role_step.check_again(arn)
            self.create(arn, role_is_ours=role_step is not None)
        elif current is not None and not plan.up_to_date:
            self.update(plan, current)
        landed = self.verify()
        what = "created" if plan.create else ("checked" if plan.up_to_date else "updated")
        name = landed.get("FunctionArn", self.wanted.function_name)
        self.console.info(f"{what} {name}: {self.landed_words(landed)}")

    @abstractmethod
    def create(self, role: str, role_is_ours: bool) -> None: ...

    @abstractmethod
    def update(self, plan: Plan, current: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def verify(self) -> dict[str, Any]:
        """GetFunction's Configuration, once what landed is checked to be what was built."""

    @abstractmethod
    def landed_words(self, configuration: Mapping[str, Any]) -> str:
        """What runs now, for the last line."""

    def _retrying(
        self, call: Callable[[], Any], retry_if: Callable[[BaseException], bool], attempts: int = 8
    ) -> Any:
        return with_retries(call, retry_if, self.console.info, self.sleep, attempts=attempts)

    def update_code(self, name: str, **code: Any) -> None:
        """UpdateFunctionCode (a zip or an image, as ``code`` says), retried while another
        update is in progress, then waited for."""
        self._retrying(
            lambda: self.lambda_client.update_function_code(FunctionName=name, **code),
            is_update_in_progress,
        )
        self.wait("function_updated_v2", name, "updated")

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

    def create_function(self, params: Mapping[str, Any], role_is_ours: bool) -> None:
        """CreateFunction (a zip or an image, as ``params`` say), then wait until Active."""
        name = params["FunctionName"]
        self.console.info(f"creating {name}")
        # IAM is eventually consistent: a role made by --create-role (now, or by a run that
        # failed a moment ago) may take seconds to be assumable. A role the user named that
        # Lambda cannot assume is wrong, and waiting would not help.
        retry_if = is_role_not_ready if role_is_ours else is_throttling

        def create() -> Any:
            # The role may have changed since it was checked (or made): each attempt
            # looks again, right before handing it to the function.
            self.check_role()
            return self.lambda_client.create_function(**params)

        self._retrying(create, retry_if, attempts=10)
        self.wait("function_active_v2", name, "Active")

    def wait_for_update_in_progress(self, name: str, configuration: Mapping[str, Any]) -> None:
        """An update another client started must end before ours can begin."""
        if configuration.get("LastUpdateStatus") == "InProgress":
            self.console.info(f"{name} has an update in progress; waiting for it first")
            self.wait("function_updated_v2", name, "updated")

    def update_configuration(self, name: str, configuration: Mapping[str, Any]) -> None:
        """UpdateFunctionConfiguration with the fields that change (none: no call), then wait."""
        if not configuration:
            return
        self.console.info(f"updating the configuration of {name}: {', '.join(configuration)}")
        self._retrying(
            lambda: self.lambda_client.update_function_configuration(
                FunctionName=name, **configuration
            ),
            is_update_in_progress,
        )
        self.wait("function_updated_v2", name, "updated")


class ZipDeployer(Deployer[Wanted, Artifact]):
    """A .zip function: the zip's bytes uploaded, its CodeSha256 checked."""

    def create(self, role: str, role_is_ours: bool) -> None:
        wanted, artifact = self.wanted, self.code
        params = {
            "FunctionName": wanted.function_name,
            "Role": role,
            "Code": {"ZipFile": artifact.zip_bytes},
            "PackageType": "Zip",
            "Description": "staticlambda: Python in one static bootstrap",
            **creation_settings(wanted, artifact),
        }
        self.create_function(params, role_is_ours)

    def update(self, plan: Plan, current: Mapping[str, Any]) -> None:
        name, artifact = self.wanted.function_name, self.code
        self.wait_for_update_in_progress(name, current)
        if plan.upload_code:
            self.console.info(f"uploading code to {name} ({human_size(artifact.size)})")
            self.update_code(
                name, ZipFile=artifact.zip_bytes, Architectures=[artifact.architecture]
            )
        self.update_configuration(name, plan.configuration)
        if current.get("CapacityProviderConfig") or "CapacityProviderConfig" in plan.configuration:
            # Managed Instances serve $LATEST.PUBLISHED: what was just updated, published.
            self.console.info(f"publishing {name} to $LATEST.PUBLISHED")
            self._retrying(
                lambda: self.lambda_client.publish_version(
                    FunctionName=name, PublishTo=LATEST_PUBLISHED
                ),
                is_update_in_progress,
            )

    def verify(self) -> dict[str, Any]:
        """The function's code must be the zip's, byte for byte, and its architecture too."""
        function_name, artifact = self.wanted.function_name, self.code
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

    def landed_words(self, configuration: Mapping[str, Any]) -> str:
        artifact = self.code
        return (
            f"CodeSha256 {configuration['CodeSha256']} matches {artifact.path} "
            f"({configuration.get('Runtime')}, {artifact.architecture})"
        )


class ImageDeployer(Deployer[ImageWanted, Image]):
    """An image function: pointed at the image by digest, the digest checked."""

    def create(self, role: str, role_is_ours: bool) -> None:
        wanted = self.wanted
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
        self.create_function(params, role_is_ours)

    def update(self, plan: Plan, current: Mapping[str, Any]) -> None:
        wanted = self.wanted
        name = wanted.function_name
        self.wait_for_update_in_progress(name, current["Configuration"])
        if plan.upload_code:
            self.console.info(f"pointing {name} at {wanted.image_uri}")
            self.update_code(name, ImageUri=wanted.image_uri, Architectures=[wanted.architecture])
        self.update_configuration(name, plan.configuration)

    def verify(self) -> dict[str, Any]:
        """The function must run this image, by digest, on its architecture."""
        wanted, image = self.wanted, self.code
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

    def landed_words(self, configuration: Mapping[str, Any]) -> str:
        return f"runs {self.wanted.image_uri} ({self.code.architecture})"
