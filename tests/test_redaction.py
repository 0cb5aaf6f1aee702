"""A hidden value is masked in the forms it travels in, wherever it sits in the text.

The encoded forms here are made the way other programs make them (json, urllib, base64,
binascii), not with build/redaction.py's own helpers.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from build.redaction import Redactor

SECRET = "sEcReT/staticlambda+Zq8vN3wPk5"


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.hide(SECRET, None, "abc")  # None and too short a value are ignored
    return r


@pytest.mark.parametrize(
    "text",
    [
        SECRET,
        json.dumps({"key": SECRET}),
        json.dumps({"key": SECRET}).replace("/", "\\/"),  # as Java and PHP encoders write it
        json.dumps({"body": json.dumps({"key": SECRET}).replace("/", "\\/")}),  # JSON in JSON
        SECRET.replace("+", "\\u002B"),  # as encoders that escape HTML-unsafe text write it
        quote(quote(SECRET, safe=""), safe=""),  # a URL inside a query string
        urlencode({"key": SECRET}),
        quote(SECRET),
        quote(SECRET, safe="").replace("%2F", "%2f").replace("%2B", "%2b"),
        quote_plus(SECRET),
        SECRET.encode().hex(),
        SECRET.encode().hex().upper(),
    ],
    ids=[
        *("exact", "json", "json-slash", "json-in-json", "json-u", "url-in-url", "form"),
        *("url", "url-lower", "url-plus", "hex", "HEX"),
    ],
)
def test_each_encoding_of_a_secret_is_masked(redactor: Redactor, text: str) -> None:
    masked = redactor.redact(f"before {text} after")
    assert masked.startswith("before ") and masked.endswith(" after")
    assert "****" in masked and text not in masked and SECRET not in masked


@pytest.mark.parametrize("before", range(6))
@pytest.mark.parametrize("after", range(4))
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_is_masked_wherever_the_secret_starts(
    redactor: Redactor, before: int, after: int, encode: object
) -> None:
    raw = b"u" * before + b":" + SECRET.encode() + b"@" * after
    encoded = encode(raw).decode()  # type: ignore[operator]
    masked = redactor.redact(f"Authorization: Basic {encoded}")
    assert "****" in masked and encoded not in masked
    # What stays visible is the surrounding bytes' encoding and at most two of the secret's.
    visible = masked.removeprefix("Authorization: Basic ").replace("****", "")
    assert len(visible) <= (before + 1 + after + 2) * 4 // 3 + 4


def test_ordinary_text_is_left_alone(redactor: Redactor) -> None:
    text = 'deploy: hello is Active (3 s) {"abc": "x"} aGVsbG8gd29ybGQ= 68656c6c6f'
    assert redactor.redact(text) == text


def test_nothing_hidden_changes_nothing() -> None:
    assert Redactor().redact(SECRET) == SECRET
