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
                    the value can have inside a longer encoded text, on one line or
                    wrapped (MIME breaks its base64 every 76 characters, PEM every 64)
    hex             lower and upper case

For base64, only the characters that depend on the value's bytes alone are matched (the
first and last few mix with whatever surrounds it), so a secret inside a longer encoded
blob is found wherever it starts. Two bytes at either end may stay visible: not enough to
use a key.

A window of a longer text (Lambda's log tail is its last 4 KB) may start or end inside a
secret: ``redact_cut`` also masks the longest end of a secret's form (MIN_CUT characters
or more) the window starts with, and the longest beginning of one it ends with. Fewer
than MIN_CUT characters of it may stay visible there.
"""

from __future__ import annotations

import base64
import re

MASK = "****"
MIN_SECRET = 4  # shorter values would mask ordinary words
MIN_ENCODED = 8  # an encoded fragment shorter than this would mask ordinary text
MIN_CUT = 4  # the shortest end of a secret masked at a window's cut
LINE_BREAK = r"\r?\n?"  # where wrapped base64 may break a line (no group: compiles 2x faster)
# What a cut leaves of an escaped character (\u002b, %2B, %252B): its end, its start.
ESCAPE_REST = re.compile(r"\\*u?(?:25)*[0-9A-Fa-f]{1,4}")
ESCAPE_START = re.compile(r"\\+(?:u[0-9A-Fa-f]{0,3})?|%(?:25)*[0-9A-Fa-f]?")
LINES = re.compile(r"\r?\n|[^\r\n]+")
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


def base64_forms(value: str) -> set[str]:
    forms = set()
    data = value.encode("utf-8")
    for pad, lead in BASE64_MIXED_LEAD.items():
        aligned = b"\0" * pad + data
        whole = aligned[: len(aligned) - len(aligned) % 3]  # groups with no unknown byte
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(whole).decode("ascii")[lead:])
    return {form for form in forms if len(form) >= MIN_ENCODED}


def value_forms(value: str) -> list[list[str]]:
    """Each form ``value`` travels in, one pattern per character of the form: the text
    (each character as itself or escaped), base64 (a line break allowed before each
    character but the first), hex."""
    forms = [[char_pattern(char) for char in value]]
    for form in sorted(base64_forms(value)):
        forms.append([re.escape(form[0]), *(LINE_BREAK + re.escape(c) for c in form[1:])])
    forms.append([f"(?i:{digit})" for digit in value.encode("utf-8").hex()])
    return forms


def mask(text: str) -> str:
    """MASK for ``text``, once per line of it: wrapped base64 keeps its line breaks."""
    return LINES.sub(lambda line: line.group() if line.group()[-1] == "\n" else MASK, text)


def match_in_turn(form: list[re.Pattern[str]], text: str, pos: int) -> tuple[int, int]:
    """How many of ``form``'s characters match one after the other from ``pos``, and where
    the last of them ends."""
    matched = 0
    for char in form:
        found = char.match(text, pos)
        if found is None:
            break
        matched, pos = matched + 1, found.end()
    return matched, pos


class Redactor:
    """Masks every value it was given to hide, in every form of ``value_forms``."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._forms: list[list[re.Pattern[str]]] = []

    def hide(self, *values: str | None) -> None:
        self._values.update(v for v in values if v and len(v) >= MIN_SECRET)
        # Longest first: a value that contains another is masked whole.
        ordered = sorted(self._values, key=len, reverse=True)
        forms = [form for value in ordered for form in value_forms(value)]
        self._pattern = re.compile("|".join("".join(f) for f in forms)) if forms else None
        compiled: dict[str, re.Pattern[str]] = {}  # a few dozen distinct characters
        self._forms = [[compiled.setdefault(c, re.compile(c)) for c in form] for form in forms]

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda found: mask(found.group()), text)

    def redact_cut(self, text: str) -> str:
        """``redact`` for a window cut out of a longer text: the end of a secret the window
        starts with and the beginning of one it ends with are masked too."""
        text = self.redact(text)
        head = max((self._end_at_start(form, text) for form in self._forms), default=0)
        tail = min((self._beginning_at_end(form, text) for form in self._forms), default=len(text))
        if tail < head:  # the window holds nothing but the middle of a secret
            return mask(text)
        return mask(text[:head]) + text[head:tail] + mask(text[tail:])

    @staticmethod
    def _end_at_start(form: list[re.Pattern[str]], text: str) -> int:
        """Where the longest end of ``form`` (MIN_CUT characters or more) that the text
        starts with ends, a piece of an escape before it included; 0 when there is none."""
        # A cut inside an escaped character leaves the rest of its escape first.
        lead = ESCAPE_REST.match(text)
        starts = (0, lead.end()) if lead else (0,)
        for start in range(1, len(form) - MIN_CUT + 1):  # longest first
            for pos in starts:
                matched, end = match_in_turn(form[start:], text, pos)
                if matched == len(form) - start:
                    return end
        return 0

    @staticmethod
    def _beginning_at_end(form: list[re.Pattern[str]], text: str) -> int:
        """Where the longest beginning of ``form`` (MIN_CUT characters or more) that the
        text ends with starts, a piece of an escape after it included; len(text) when
        there is none."""
        for pos in range(len(text) - MIN_CUT + 1):  # earliest first: longest
            matched, end = match_in_turn(form, text, pos)
            if matched >= MIN_CUT and (end == len(text) or ESCAPE_START.fullmatch(text, end)):
                return pos
        return len(text)
