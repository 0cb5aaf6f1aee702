"""ENV_FILE and ENV: the function's own variables, given to both sides alike.

A stand-in until build/function_env.py (ENV_FILE/ENV for the build's init check, for
invoke and deploy) lands: ``declared`` has its signature, so one import swaps them.
ENV_FILE holds NAME=value lines (`export ` before one is allowed; blank lines and `#`
lines are skipped; a value in matching quotes is taken without them); ENV holds
NAME=value words, split as a shell splits them, and wins over ENV_FILE. A mistake is
one line naming the file and line, never a value: values may be secrets.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from build.errors import CompareError

NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")  # Lambda's pattern for a variable's name


def declared(env_file: str, env: str) -> dict[str, str] | None:
    """The function's variables, ENV over ENV_FILE; None when neither was given."""
    if not env_file and not env.strip():
        return None
    variables: dict[str, str] = {}
    if env_file:
        try:
            lines = Path(env_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise CompareError(f"ENV_FILE={env_file} cannot be read: {e}") from None
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                text = text[len("export ") :] if text.startswith("export ") else text
                name, value = pair(text, f"ENV_FILE={env_file}:{number}")
                value = value.strip()
                quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
                variables[name] = value[1:-1] if quoted else value
    try:
        words = shlex.split(env)
    except ValueError:
        raise CompareError("ENV: a quote is not closed (ENV=\"A=1 B='two words'\")") from None
    variables.update(pair(word, f"ENV word {n}") for n, word in enumerate(words, 1))
    return variables


def pair(text: str, where: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not NAME.fullmatch(name.strip()):
        raise CompareError(
            f"{where}: not NAME=value (a name is a letter, then letters, digits or _)"
        )
    return name.strip(), value
