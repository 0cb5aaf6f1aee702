r"""The function's environment, declared once: ENV_FILE (a dotenv file) and ENV
("NAME=value ..."), given to the init check, to `make invoke` and to `make deploy`.

ENV_FILE holds one variable a line:

    NAME=value            the value as written, spaces around it dropped; ` #` starts a comment
    NAME="a value"        double quotes: the escapes \" \\ \n \t \r \$; a comment may follow
    NAME='a value'        single quotes: the text as it is
    export NAME=value     `export ` is tolerated, so a shell can source the same file
    # a comment           and blank lines: skipped

Nothing is expanded (`$OTHER` stays as written), a value ends with its line, and a name
given twice keeps its last value. ENV is NAME=value words split as a shell splits them
(ENV="A=1 B='two words'"); a name in both takes ENV's value. A name must be one Lambda
accepts ([a-zA-Z][a-zA-Z0-9_]+) and not one Lambda sets itself (``reserved``); all of
them together must fit in Lambda's 4 KB. A mistake is one line naming the file and line,
and never a value: values may be secrets.

A build given either writes what it checked to dist/bootstrap.environment.json (mode
0600) beside the binary; `make invoke` and `make deploy` read that file, so neither needs
them again. A build given neither writes none: deploy then leaves the function's
variables as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

from build.atomic import replace_file
from build.errors import BuildError

ENVIRONMENT_FILE = "bootstrap.environment.json"
# Lambda's pattern for a variable's name (botocore: EnvironmentVariableName).
NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
# What Lambda sets itself and refuses in a function's configuration (AWS Lambda docs,
# "Defined runtime environment variables"), besides every AWS_LAMBDA_* name.
RESERVED = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
    }
)
MAX_BYTES = 4096  # Lambda's quota for all of a function's variables together
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "$": "$"}


def reserved(name: str) -> bool:
    return name in RESERVED or name.startswith("AWS_LAMBDA_")


def check_name(name: str, where: str) -> None:
    if not NAME.fullmatch(name):
        shown = name if name.isprintable() and len(name) <= 64 else "the name"
        raise BuildError(
            f"{where}: {shown!r} is not a name Lambda accepts (a letter, then letters, digits "
            "or _, two characters at least)"
        )
    if reserved(name):
        raise BuildError(f"{where}: {name} is set by Lambda itself (reserved): remove it")


def quoted(text: str, where: str) -> tuple[str, str]:
    """The value of a quoted text and what follows its closing quote."""
    quote, i = text[0], 1
    value: list[str] = []
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(value), text[i + 1 :]
        if quote == '"' and char == "\\" and i + 1 < len(text):
            escaped = text[i + 1]
            value.append(ESCAPES.get(escaped, "\\" + escaped))
            i += 2
            continue
        value.append(char)
        i += 1
    raise BuildError(
        f"{where}: the value's {quote} is not closed on its line (a value is one line; "
        "write a newline as \\n inside double quotes)"
    )


def parse_line(line: str, where: str) -> tuple[str, str] | None:
    """(name, value) of one line of ENV_FILE; None for a blank or comment line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("export "):
        text = text[len("export ") :].lstrip()
    name, equals, rest = text.partition("=")
    if not equals:
        raise BuildError(f"{where}: not NAME=value (nor a # comment or a blank line)")
    name = name.strip()
    check_name(name, where)
    if rest.strip()[:1] in ("'", '"'):
        value, after = quoted(rest.strip(), where)
        if after.strip() and not after.strip().startswith("#"):
            raise BuildError(
                f"{where}: {name}'s value has text after its closing quote: quote all of it"
            )
        return name, value
    # Whitespace then `#` starts a comment: `NAME=#x` is "#x", `NAME= # note` is "".
    return name, re.split(r"\s#", rest, maxsplit=1)[0].strip()


def parse_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildError(f"ENV_FILE={path} does not exist") from None
    except IsADirectoryError:
        raise BuildError(f"ENV_FILE={path} is a folder: give a file of NAME=value lines") from None
    except UnicodeDecodeError as e:
        raise BuildError(f"ENV_FILE={path} is not UTF-8 text (byte {e.start})") from None
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        pair = parse_line(line, f"ENV_FILE={path}:{number}")
        if pair is not None:
            variables[pair[0]] = pair[1]
    return variables


def parse_env_words(text: str) -> dict[str, str]:
    try:
        words = shlex.split(text)
    except ValueError:
        raise BuildError("ENV: a quote is not closed (ENV=\"A=1 B='two words'\")") from None
    variables: dict[str, str] = {}
    for number, word in enumerate(words, 1):
        name, equals, value = word.partition("=")
        if not equals:
            # Some shells export an ENV of their own (a file sh reads): make sees it too.
            raise BuildError(
                f"ENV: word {number} is not NAME=value (an ENV exported by your shell counts "
                "too: unset it, or give ENV= on the command line)"
            )
        check_name(name, "ENV")
        variables[name] = value
    return variables


def declared(env_file: str, env: str) -> dict[str, str] | None:
    """The function's variables, ENV over ENV_FILE; None when neither was given."""
    if not env_file and not env.strip():
        return None
    variables = parse_env_file(Path(env_file)) if env_file else {}
    variables.update(parse_env_words(env))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > MAX_BYTES:
        raise BuildError(
            f"the function's environment is {size} bytes (names and values); Lambda takes at "
            f"most {MAX_BYTES}: keep large values in a file or a parameter store"
        )
    return variables


def digest(variables: dict[str, str] | None) -> str:
    """What the record keeps of the environment: a hash, never the values."""
    if variables is None:
        return ""
    return hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()


def write_environment(dist: Path, variables: dict[str, str] | None) -> None:
    """dist/bootstrap.environment.json, readable by this user alone; none when not declared."""
    path = dist / ENVIRONMENT_FILE
    path.unlink(missing_ok=True)
    if variables is None:
        return
    replace_file(path, json.dumps(variables, indent=1, sort_keys=True) + "\n", mode=0o600)


def read_environment(dist: Path) -> dict[str, str] | None:
    """What the build checked the function with; None when it was given no environment."""
    path = dist / ENVIRONMENT_FILE
    try:
        variables = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        raise BuildError(f"{path} is not what a build writes: run `make zip` again") from None
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise BuildError(f"{path} is not what a build writes: run `make zip` again")
    return variables
