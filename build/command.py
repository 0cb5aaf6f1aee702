"""What the build's command lines share (`python -m build.pipeline`, `build.sam`, `build.image`).

make hands every value over as one word, an empty one where the user gave none; a
command's --help is its module's docstring as written; and a mistake the user can
fix ends the command as one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from build.errors import BuildError


def command_line(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, its docstring kept as written in --help."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def words(value: str | None) -> tuple[str, ...]:
    """EXCLUDE / ADD_DATA: space- or newline-separated."""
    return tuple((value or "").split())


def exit_status(
    tool: str,
    command: Callable[[], object],
    caught: tuple[type[Exception], ...] = (BuildError,),
) -> int:
    """0 when ``command`` succeeds; 1, with `tool: message` on stderr, when it raises
    one of the ``caught`` errors (those whose message says what to do). Any other
    exception is a bug and keeps its traceback."""
    try:
        command()
    except caught as e:
        print(f"{tool}: {e}", file=sys.stderr)
        return 1
    return 0
