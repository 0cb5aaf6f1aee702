"""What went wrong with AWS, in one line each, and which failures are worth a retry.

    DeployError         a failure the user can act on: AWS said no, the zip is wrong (exit 1)
    └── UsageError      the command line is wrong or incomplete (exit 2)

DeployError is one branch of the build side's tree (build/errors.py).

``explain`` turns botocore's exceptions into one line: no credentials, unknown region,
access denied, an endpoint out of reach. ``with_retries`` repeats one AWS call, with
exponential backoff and jitter, while the failure is one that passes by itself: an update
still in progress (ResourceConflictException), throttling, a new role not yet visible to
Lambda. No message built here holds a credential: they are made of AWS error codes and
messages, which never carry the secret key or the session token.
"""

from __future__ import annotations

import random
from typing import Any, Callable, TypeVar

import botocore.exceptions  # type: ignore[import-untyped]

from build.errors import StaticLambdaError

T = TypeVar("T")


class DeployError(StaticLambdaError):
    """A failure to report in one line, without a traceback."""


class UsageError(DeployError):
    pass


# Lambda answers TooManyRequestsException; IAM and the other query APIs use the rest.
THROTTLING = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottledException",
    }
)
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
    }
)

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or run `aws configure` / `aws sso login`"
)
NO_REGION = "no AWS region: pass REGION=<region> (--region) or set AWS_REGION"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or "" for anything else."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")).strip()
    return str(exc)


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING


def is_update_in_progress(exc: BaseException) -> bool:
    """Lambda refuses a change while the function's last update is still being applied."""
    return error_code(exc) == "ResourceConflictException" or is_throttling(exc)


def is_role_not_ready(exc: BaseException) -> bool:
    """A role made seconds ago is not yet visible to Lambda: IAM is eventually consistent."""
    return (
        error_code(exc) == "InvalidParameterValueException"
        and "cannot be assumed" in error_message(exc)
    ) or is_throttling(exc)


def explain(exc: BaseException) -> str:
    """One line saying what failed and what to do about it."""
    errors = botocore.exceptions
    if isinstance(exc, (errors.NoCredentialsError, errors.PartialCredentialsError)):
        return NO_CREDENTIALS
    if isinstance(exc, (errors.TokenRetrievalError, errors.SSOTokenLoadError)):
        return "the AWS SSO session has expired or is missing: run `aws sso login`"
    if isinstance(exc, errors.ProfileNotFound):
        return f"AWS profile not found: {exc.kwargs.get('profile')} (check AWS_PROFILE)"
    if isinstance(exc, errors.NoRegionError):
        return NO_REGION
    if isinstance(exc, errors.InvalidRegionError):
        return f"not a valid AWS region name: {exc.kwargs.get('region_name')!r}"
    if isinstance(exc, errors.EndpointConnectionError):
        return (
            f"cannot reach {exc.kwargs.get('endpoint_url')}: check REGION, the network, "
            "and AWS_ENDPOINT_URL* if set"
        )
    if isinstance(exc, (errors.ConnectTimeoutError, errors.ReadTimeoutError)):
        return f"AWS did not answer in time: {exc.kwargs.get('endpoint_url')}"
    if isinstance(exc, errors.ClientError):
        code, message = error_code(exc), error_message(exc)
        operation = getattr(exc, "operation_name", "") or "AWS call"
        if code in ACCESS_DENIED:
            return f"access denied ({operation}): {message}"
        if code in BAD_CREDENTIALS:
            return f"AWS rejected the credentials ({code}): {message}"
        return f"{operation} failed: {code}: {message}"
    return " ".join(str(exc).split()) or type(exc).__name__


def with_retries(
    call: Callable[[], T],
    retry_if: Callable[[BaseException], bool],
    say: Callable[[str], None],
    sleep: Callable[[float], Any],
    attempts: int = 8,
    first_delay: float = 1.0,
    max_delay: float = 16.0,
) -> T:
    """``call()``, again after a growing pause while it fails in a way ``retry_if`` accepts.

    botocore already retries throttling a few times inside each call; this loop covers what
    it does not (a conflicting update, a role not yet propagated) and throttling that lasts.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except botocore.exceptions.ClientError as e:
            if attempt == attempts or not retry_if(e):
                raise
            # Full jitter: many deploys retrying at once do not retry in step.
            delay = random.uniform(0.5, 1.0) * min(max_delay, first_delay * 2 ** (attempt - 1))
            say(f"{error_code(e)}: {error_message(e)} (retry {attempt} in {delay:.1f} s)")
            sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
