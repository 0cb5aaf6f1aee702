"""Sample values shared by the tests: a mobile SDK's client context, as Lambda
passes it in Lambda-Runtime-Client-Context (and the emulator from X-Amz-Client-Context),
and the environment Lambda gives a function."""

from __future__ import annotations

from typing import Any

CLIENT_CONTEXT: dict[str, Any] = {
    "client": {
        "installation_id": "inst-1",
        "app_title": "Shop",
        "app_version_name": "2.1",
        "app_version_code": "21",
        "app_package_name": "com.example.shop",
    },
    "custom": {"cart": "42"},
    "env": {"platform": "Android", "locale": "fr_FR"},
}

LAMBDA_ENV = {
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    "_HANDLER": "app.handler",
    "AWS_LAMBDA_FUNCTION_NAME": "orders",
    "AWS_LAMBDA_FUNCTION_VERSION": "7",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[7]abc",
}
