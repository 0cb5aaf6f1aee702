"""Event bytes to Python, and a handler's result back to bytes, as AWS's Python
runtime does it: JSON both ways, ``bytes`` results sent as they are."""

from __future__ import annotations

import decimal
import json
import os
import re
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
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise Fault(errors.UNMARSHAL_ERROR, f"Unable to unmarshal input: {e}") from None


def marshal_response(result: Any) -> tuple[bytes, str]:
    """The body to post and its content type."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), UNKNOWN
    decimals = _DecimalNumbers()
    try:
        text = json.dumps(result, default=decimals.default)
    except (TypeError, ValueError, OverflowError) as e:
        raise Fault(errors.MARSHAL_ERROR, f"Unable to marshal response: {e}") from None
    return decimals.substitute(text).encode(), JSON


class _DecimalNumbers:
    """DynamoDB's boto3 types hand back Decimal; awslambdaric writes each as the
    number it spells (``1.10``, ``1E+2``, all 38 digits), never rounded through a
    float. The stdlib encoder cannot write raw text, so each Decimal goes out as
    a placeholder string, unique to this call, replaced by its digits after."""

    def __init__(self) -> None:
        self.numbers: list[str] = []
        self.token = ""

    def default(self, value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            if not self.token:
                self.token = os.urandom(16).hex()
            # -NaN and sNaN are no JSON at all; awslambdaric writes every NaN as NaN.
            self.numbers.append("NaN" if value.is_nan() else str(value))
            return f"{self.token}:{len(self.numbers) - 1}"
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    def substitute(self, text: str) -> str:
        if not self.numbers:
            return text
        return re.sub(f'"{self.token}:([0-9]+)"', lambda m: self.numbers[int(m[1])], text)
