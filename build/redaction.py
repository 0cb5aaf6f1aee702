"""Credentials out of what deploy and remote-invoke print, in the forms they travel in.

A secret reaches the terminal not only as itself: a JSON string escapes it (`\\/`, `\\u002b`,
and again when that JSON sits inside another JSON string), a query string or form body
percent-encodes it, a payload or a log line carries it in base64 or hex. Each hidden value
is matched as:

    text            the value with each character other than an ASCII letter or digit in
                    any of its escaped forms, to any depth: backslashes before it (JSON,
                    JSON in JSON), \\uXXXX, %XX, %25XX, %2525XX (URL-encoded once or
                    more), `+` for a space; hex digits in either case
    base64          standard and URL-safe alphabets, at each of the three byte alignments
                    the value can have inside a longer encoded text
    hex             lower and upper case

For base64, only the characters that depend on the value's bytes alone are matched (the
first and last few mix with whatever surrounds it), so a secret inside a longer encoded
blob is found wherever it starts. Two bytes at either end may stay visible: not enough to
use a key.
"""

from __future__ import annotations

import base64
import re

MASK = "****"
MIN_SECRET = 4  # shorter values would mask ordinary words
MIN_ENCODED = 8  # an encoded fragment shorter than this would mask ordinary text
ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

# Characters to drop from the front of base64(pad + value) for each pad length, since
# they encode pad bits too (a 3-byte group spreads over 4 characters).
BASE64_MIXED_LEAD = {0: 0, 1: 2, 2: 3}


def char_pattern(char: str) -> str:
    """A regular expression for one character of a secret, as itself or escaped."""
    if char in ASCII_ALNUM:
        return re.escape(char)
    forms = [r"\\*" + re.escape(char)]  # as is, or behind a backslash per level of JSON
    if ord(char) < 0x10000:
        forms.append(rf"\\+(?i:u{ord(char):04x})")
    # Encoding %2F again gives %252F: each level adds "25" after the "%".
    percent = "".join(rf"%(?:25)*(?i:{byte:02x})" for byte in char.encode("utf-8"))
    forms.append(percent)
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


def text_pattern(value: str) -> str:
    return "".join(char_pattern(char) for char in value)


def base64_forms(value: str) -> set[str]:
    forms = set()
    data = value.encode("utf-8")
    for pad, lead in BASE64_MIXED_LEAD.items():
        aligned = b"\0" * pad + data
        whole = aligned[: len(aligned) - len(aligned) % 3]  # groups with no unknown byte
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(whole).decode("ascii")[lead:])
    return {form for form in forms if len(form) >= MIN_ENCODED}


def hex_pattern(value: str) -> str:
    return "(?i:" + value.encode("utf-8").hex() + ")"


def value_patterns(value: str) -> list[str]:
    """Every pattern that masks ``value``: the text forms, base64, hex."""
    return [text_pattern(value), *map(re.escape, sorted(base64_forms(value))), hex_pattern(value)]


class Redactor:
    """Masks every value it was given to hide, in every form of ``value_patterns``."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def hide(self, *values: str | None) -> None:
        self._values.update(v for v in values if v and len(v) >= MIN_SECRET)
        # Longest first: a value that contains another is masked whole.
        ordered = sorted(self._values, key=len, reverse=True)
        patterns = [pattern for value in ordered for pattern in value_patterns(value)]
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def redact(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text
