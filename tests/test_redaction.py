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


# --- a secret cut by a window, a secret wrapped over lines --------------------

TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx+token/Zq8vN3wPk5=="


def test_a_secret_cut_by_the_start_of_a_window_is_masked_at_the_cut() -> None:
    # Lambda's log tail is the last 4 KB: its first line may start inside a secret.
    r = Redactor()
    r.hide(SECRET, TOKEN)
    for secret in (SECRET, TOKEN):
        for cut in range(1, len(secret) - 3):
            window = f"{secret[cut:]} was printed\nREPORT RequestId: 1"
            masked = r.redact_cut(window)
            assert masked == "**** was printed\nREPORT RequestId: 1", (secret, cut)


def test_a_secret_cut_by_the_end_of_a_window_is_masked_at_the_cut() -> None:
    r = Redactor()
    r.hide(SECRET, TOKEN)
    for secret in (SECRET, TOKEN):
        for kept in range(4, len(secret)):
            masked = r.redact_cut(f"START RequestId: 1\nsecret={secret[:kept]}")
            assert masked == "START RequestId: 1\nsecret=****", (secret, kept)


def test_an_encoded_secret_cut_by_a_window_is_masked_at_the_cut() -> None:
    r = Redactor()
    r.hide(SECRET)
    for encoded in (
        base64.b64encode(SECRET.encode()).decode(),
        SECRET.encode().hex(),
        quote(SECRET, safe=""),
        json.dumps(SECRET).replace("/", "\\/")[1:-1],
    ):
        for cut in range(1, len(encoded) - 4):
            assert r.redact_cut(encoded[cut:] + " after") == "**** after", (encoded, cut)
            head = encoded[: len(encoded) - cut]
            if len(head) >= 6:
                assert r.redact_cut("before " + head) == "before ****", (encoded, cut)


def test_a_cut_keeps_ordinary_text_and_short_coincidences() -> None:
    r = Redactor()
    r.hide(SECRET)
    text = "ticket Pk5 was closed\nsEc was the word"  # three characters of each end
    assert r.redact_cut(text) == text
    assert r.redact_cut("") == ""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("before", range(4))
def test_mime_wrapped_base64_is_masked_across_its_line_breaks(newline: str, before: int) -> None:
    r = Redactor()
    r.hide(TOKEN)
    # A long secret in base64 wrapped at 76 characters, as MIME (and encodebytes) writes it.
    raw = b"x" * before + b"token=" + TOKEN.encode() + b";" + b"y" * 40
    wrapped = base64.encodebytes(raw).decode().replace("\n", newline)
    assert wrapped.count(newline) >= 2
    masked = r.redact(wrapped)
    assert "****" in masked
    shown = masked.replace(newline, "")
    for pad in range(3):  # no 8 characters of its encoding, at any alignment, are left
        inner = base64.b64encode(b"\0" * pad + TOKEN.encode()).decode()[4:-4]
        assert not any(inner[i : i + 8] in shown for i in range(len(inner) - 7)), masked
    assert masked.count(newline) == wrapped.count(newline)  # the lines stay lines
