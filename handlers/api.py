"""The bench's real function: an HTTP API as a new user writes one, with
Powertools' Logger and APIGatewayHttpResolver, and a boto3 client made at
import (as AWS's guides advise, so warm invokes reuse it).

`make bench` builds it with REQUIREMENTS=handlers/api-requirements.txt and
serves it an API Gateway HTTP API (payload 2.0) event for GET /hello.
"""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

logger = Logger(service="bench-api")
app = APIGatewayHttpResolver()
# Made at init, used by routes that need it; region given so no lookup is needed.
s3 = boto3.client("s3", region_name="us-east-1")


@app.get("/hello")
def hello() -> dict[str, str]:
    logger.info("hello")
    return {"message": "hello", "client": s3.meta.service_model.service_name}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
