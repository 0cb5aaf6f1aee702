"""The bench's heavier handler (build/bench/managed.py): what a typical
function does at init, import boto3 and Powertools and make its clients."""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]  # no stubs in the tools venv
from aws_lambda_powertools import Logger  # only in its build (pyproject: ignore_missing_imports)

logger = Logger(service="bench")
# Made at import, as most functions do: botocore loads and parses the service's model.
s3 = boto3.client("s3", region_name="us-east-1")
dynamodb = boto3.client("dynamodb", region_name="us-east-1")


def handler(event: dict[str, Any], context: Any) -> Any:
    return event
