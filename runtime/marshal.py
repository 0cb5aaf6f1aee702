"""Event bytes to Python, and a handler's result back to bytes, as AWS's Python
runtime does it: JSON both ways, ``bytes`` results sent as they are."""

from __future__ import annotations

import decimal
import json
from typing import Any

from runtime import errors
from runtime.errors import Fault

JSON = "application/json"
UNKNOWN = "application/unknown"


def unmarshal_event(body: bytes, content_type: str | None = JSON) -> Any:
    if content_type and not content_type.startswith(JSON):
        return body
    try:
        return json.loads(body)
    except ValueError as e:
        raise Fault(errors.UNMARSHAL_ERROR, f"Unable to unmarshal input: {e}") from None


def marshal_response(result: Any) -> tuple[bytes, str]:
    """The body to post and its content type."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), UNKNOWN
    try:
        return json.dumps(result, default=_json_default).encode(), JSON
    except (TypeError, ValueError, OverflowError) as e:
        raise Fault(errors.MARSHAL_ERROR, f"Unable to marshal response: {e}") from None


def _json_default(value: Any) -> Any:
    # DynamoDB's boto3 types hand back Decimal; awslambdaric encodes them as numbers.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
