"""The configuration read from the environment, and the context a handler
receives, built from the /next headers: attribute for attribute as awslambdaric's."""

from __future__ import annotations

import json
import os
import time

import pytest
from awslambdaric.lambda_context import LambdaContext as AwsLambdaContext
from samples import CLIENT_CONTEXT, LAMBDA_ENV

from runtime import errors
from runtime.config import Config
from runtime.context import LambdaContext, parse_client_context, parse_cognito_identity
from runtime.errors import Fault

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders:prod"
COGNITO = {"cognitoIdentityId": "eu-west-1:id-1", "cognitoIdentityPoolId": "eu-west-1:pool-1"}


# --- LambdaContext ------------------------------------------------------------


def make_context(
    deadline_ms: int | None = None,
    client_context: str | None = json.dumps(CLIENT_CONTEXT),
    cognito: str | None = json.dumps(COGNITO),
) -> LambdaContext:
    return LambdaContext(
        Config.from_env(LAMBDA_ENV),
        "req-1",
        int(time.time() * 1000) + 30_000 if deadline_ms is None else deadline_ms,
        ARN,
        parse_client_context(client_context),
        parse_cognito_identity(cognito),
        "tenant-9",
    )


def test_context_attributes_from_headers_and_environment() -> None:
    context = make_context()
    assert context.aws_request_id == "req-1"
    assert context.invoked_function_arn == ARN
    assert context.function_name == "orders"
    assert context.function_version == "7"
    assert context.memory_limit_in_mb == "512"
    assert context.log_group_name == "/aws/lambda/orders"
    assert context.log_stream_name == "2026/11/26/[7]abc"
    assert context.tenant_id == "tenant-9"
    assert context.identity.cognito_identity_id == "eu-west-1:id-1"
    assert context.identity.cognito_identity_pool_id == "eu-west-1:pool-1"
    client_context = context.client_context
    assert client_context is not None
    assert client_context.custom == {"cart": "42"}
    assert client_context.env == {"platform": "Android", "locale": "fr_FR"}
    client = client_context.client
    assert client is not None
    assert client.installation_id == "inst-1"
    assert client.app_title == "Shop"
    assert client.app_version_name == "2.1"
    assert client.app_version_code == "21"
    assert client.app_package_name == "com.example.shop"


def test_context_without_client_context_or_cognito_headers() -> None:
    context = make_context(client_context=None, cognito=None)
    assert context.client_context is None
    # An identity object is always there, empty, as on AWS's runtime.
    assert context.identity.cognito_identity_id is None
    assert context.identity.cognito_identity_pool_id is None


def test_client_context_without_client_part() -> None:
    parsed = parse_client_context(json.dumps({"custom": {"a": 1}}))
    assert parsed is not None
    assert parsed.client is None
    assert parsed.custom == {"a": 1}
    assert parsed.env is None


def test_client_context_client_with_missing_fields_reads_none() -> None:
    parsed = parse_client_context(json.dumps({"client": {"app_title": "T"}}))
    assert parsed is not None and parsed.client is not None
    assert parsed.client.app_title == "T"
    assert parsed.client.installation_id is None


def test_context_matches_awslambdaric_attribute_for_attribute() -> None:
    os.environ.update(LAMBDA_ENV)  # awslambdaric reads the environment itself
    deadline = int(time.time() * 1000) + 30_000
    ours = make_context(deadline)
    theirs = AwsLambdaContext("req-1", CLIENT_CONTEXT, COGNITO, deadline, ARN, "tenant-9")
    assert repr(ours) == repr(theirs)


def test_remaining_time_counts_down_to_the_deadline() -> None:
    context = make_context(int(time.time() * 1000) + 10_000)
    assert 9_000 < context.get_remaining_time_in_millis() <= 10_000
    time.sleep(0.05)
    assert context.get_remaining_time_in_millis() <= 9_950


def test_remaining_time_is_never_negative() -> None:
    assert make_context(int(time.time() * 1000) - 5_000).get_remaining_time_in_millis() == 0
    assert make_context(0).get_remaining_time_in_millis() == 0


def test_context_log_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    make_context().log("a line from context.log\n")
    assert capsys.readouterr().out == "a line from context.log\n"


# --- malformed headers --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "{not json",
            "Unable to parse Client Context JSON: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)",
        ),
        ("[1, 2]", "Unable to parse Client Context JSON: expected an object"),
    ],
)
def test_malformed_client_context_is_a_context_unmarshal_fault(header: str, message: str) -> None:
    with pytest.raises(Fault) as e:
        parse_client_context(header)
    assert (e.value.error_type, e.value.message) == (errors.CONTEXT_UNMARSHAL_ERROR, message)
    assert e.value.error_type == "Runtime.LambdaContextUnmarshalError"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "nope",
            "Unable to parse Cognito Identity JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        ('"a string"', "Unable to parse Cognito Identity JSON: expected an object"),
    ],
)
def test_malformed_cognito_identity_is_a_context_unmarshal_fault(header: str, message: str) -> None:
    with pytest.raises(Fault) as e:
        parse_cognito_identity(header)
    assert (e.value.error_type, e.value.message) == ("Runtime.LambdaContextUnmarshalError", message)
