"""build/aws_errors.py: retries with back-off, and one line for each AWS failure, alone."""

from __future__ import annotations

import botocore.exceptions
import pytest

from build.aws_errors import explain, with_retries


def client_error(code: str, message: str = "") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message}}, "UpdateFunctionCode"
    )


def test_retries_back_off_then_give_up() -> None:
    sleeps: list[float] = []
    failures = iter([client_error("ResourceConflictException")] * 2)

    def call() -> str:
        for failure in failures:
            raise failure
        return "done"

    retry = lambda e: e.response["Error"]["Code"] == "ResourceConflictException"  # noqa: E731
    assert with_retries(call, retry, lambda _: None, sleeps.append) == "done"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0

    def always() -> str:
        raise client_error("ResourceConflictException")

    with pytest.raises(botocore.exceptions.ClientError):
        with_retries(always, retry, lambda _: None, sleeps.append, attempts=3)
    assert len(sleeps) == 4  # two more pauses, then the third failure is raised

    def denied() -> str:
        raise client_error("AccessDeniedException")

    with pytest.raises(botocore.exceptions.ClientError):
        with_retries(denied, retry, lambda _: None, sleeps.append)
    assert len(sleeps) == 4


def test_explain_gives_one_line_per_failure() -> None:
    assert explain(botocore.exceptions.NoCredentialsError()).startswith("no AWS credentials found")
    assert explain(botocore.exceptions.NoRegionError()).startswith("no AWS region")
    denied = client_error(
        "AccessDeniedException", "User: x is not authorized to perform: lambda:GetFunction"
    )
    assert (
        explain(denied) == "access denied (UpdateFunctionCode): "
        "User: x is not authorized to perform: lambda:GetFunction"
    )
    assert explain(client_error("UnrecognizedClientException", "bad token")).startswith(
        "AWS rejected the credentials"
    )
