"""The stack trace frames of the function's own code, as both runtimes print them.

An error's stack trace (the reply's ``stackTrace``, a JSON log record's, a logged or
printed traceback) goes through the runtime, the standard library and the function's
dependencies, which the two sides hold in different places (a bundle unpacked under
/tmp, a pip --target folder, /usr/lib/python3.11) and, for the runtime, in different
files. What must be the same is the function's own part: for each of its frames the
file relative to the code folder, the line, the function and the line's source text.

    File "/tmp/x/staticx-Ab12/app.py", line 12, in check   (A, its bundle)
    File "/home/me/fn/app.py", line 12, in check            (B, the user's folder)
        -> Frame("app.py", 12, "check", 'raise ValueError("no")')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# One frame as Python's traceback module writes it; Lambda's runtimes indent a logged
# traceback with no-break spaces (U+00A0), so that CloudWatch keeps the indentation.
FRAME_LINE = re.compile(
    r'^(?P<indent>[ \xa0]*)File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>.*)$'
)
# A frame of a stack trace list (traceback.format_list): its line, then its source, if any.
FRAME_ENTRY = re.compile(
    r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>[^\n]*)\n?'
    r"(?:[ \xa0]*(?P<source>[^\n]*?)\s*)?$"
)
# How far below the side's TMPDIR the code of an unpacked bundle may start: staticx's
# folder, then PyInstaller's contents folder.
BUNDLE_DEPTH = 2


@dataclass(frozen=True)
class Frame:
    file: str  # relative to the code folder
    line: int
    function: str
    source: str  # "" when the runtime showed none

    def __str__(self) -> str:
        source = self.source or "(no source line)"
        return f'File "{self.file}", line {self.line}, in {self.function}: {source}'


class OwnCode:
    """Which file names are the function's own code, and their names relative to the
    code folder. ``code`` is the function's folder as the user has it (SRC); ``here`` the
    folder this side's runtime ran in (its working directory; the code folder for both
    sides: the bootstrap serves from its unpacked one), ``tmpdir`` the side's TMPDIR,
    under which the bootstrap unpacks its bundle."""

    def __init__(self, code: Path, here: str = "", tmpdir: str = ""):
        self.code = code
        self.bases = [PurePosixPath(p) for p in (here, str(code)) if p]
        self.tmpdir = PurePosixPath(tmpdir) if tmpdir else None

    def relative(self, filename: str) -> str | None:
        """``filename`` relative to the code folder when it is a file of the function's
        own code, else None (the runtime's, the standard library's, a dependency's)."""
        if not filename or filename.startswith("<"):
            return None  # <frozen importlib._bootstrap>, <string>
        path = PurePosixPath(filename)
        if not path.is_absolute():
            return self._own(path)
        for base in self.bases:
            own = self._own(path.relative_to(base)) if path.is_relative_to(base) else None
            if own is not None:
                return own
        if self.tmpdir is not None and path.is_relative_to(self.tmpdir):
            inside = path.relative_to(self.tmpdir).parts
            for depth in range(1, BUNDLE_DEPTH + 1):
                own = self._own(PurePosixPath(*inside[depth:])) if inside[depth:] else None
                if own is not None:
                    return own
        return None

    def _own(self, relative: PurePosixPath) -> str | None:
        # A dot folder (.venv, .cache) under a code folder holds tools, never the function.
        if any(part.startswith(".") for part in relative.parts):
            return None
        return str(relative) if (self.code / relative).is_file() else None

    def frame(self, filename: str, line: str, function: str, source: str) -> Frame | None:
        relative = self.relative(filename)
        if relative is None:
            return None
        return Frame(relative, int(line), function, source.strip(" \xa0"))

    def stack_trace(self, entries: object) -> list[str]:
        """A reply's (or JSON record's) ``stackTrace``: its own frames, as text."""
        if not isinstance(entries, list):
            return [] if entries is None else [f"(not a list: {entries!r})"]
        frames = []
        for entry in entries:
            match = FRAME_ENTRY.match(entry) if isinstance(entry, str) else None
            if match is None:
                frames.append(f"(not a frame: {entry!r})")
                continue
            frame = self.frame(
                match["file"], match["line"], match["function"], match["source"] or ""
            )
            if frame is not None:
                frames.append(str(frame))
        return frames

    def traceback_lines(self, lines: list[str]) -> list[str]:
        """Lines of text with a traceback in them (a logged error's, a printed one): each
        frame line, and its source line after it, becomes the frame of the function's own
        code or goes; every other line stays as it is."""
        kept: list[str] = []
        i = 0
        while i < len(lines):
            match = FRAME_LINE.match(lines[i])
            if match is None:
                kept.append(lines[i])
                i += 1
                continue
            source = ""
            following = lines[i + 1] if i + 1 < len(lines) else None
            if following is not None and _is_source_of(following, match["indent"]):
                source = following
                i += 1
            frame = self.frame(match["file"], match["line"], match["function"], source)
            if frame is not None:
                kept.append(f"{match['indent']}{frame}")
            i += 1
        return kept


def _is_source_of(line: str, indent: str) -> bool:
    """A frame's source line: indented further than the frame, and no frame itself."""
    stripped = line.lstrip(" \xa0")
    deeper = len(line) - len(stripped) > len(indent)
    return deeper and bool(stripped) and FRAME_LINE.match(line) is None
