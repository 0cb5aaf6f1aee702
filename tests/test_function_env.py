"""The function's environment (build/function_env.py): ENV_FILE's dotenv lines and ENV's
words, read as the README says, and every mistake one line that names the file and line
and never prints a value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from build.errors import BuildError
from build.function_env import (
    ENVIRONMENT_FILE,
    declared,
    digest,
    read_environment,
    write_environment,
)

SECRET = "s3cr3t-Value-9f2"


def env_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "fn.env"
    path.write_text(text)
    return str(path)


def test_dotenv_lines_as_documented(tmp_path: Path) -> None:
    text = (
        "# the function's settings\n"
        "\n"
        "TABLE_NAME=cars\n"
        "  export REGION_NAME = eu-west-1  \n"
        'GREETING="hello # not a comment" # a comment\n'
        "LITERAL='$HOME \\n stays'\n"
        'ESCAPED="a\\"b\\\\c\\nd"\n'
        "URL=https://example.com/a?b=c#frag\n"
        "NOTE=value # a comment\n"
        "EMPTY=\n"
        "BLANK= # only a comment\n"
        "HASH=#not-a-comment\n"
        "TABLE_NAME=trucks\n"
    )
    assert declared(env_file(tmp_path, text), "") == {
        "TABLE_NAME": "trucks",  # given twice: the last one
        "REGION_NAME": "eu-west-1",
        "GREETING": "hello # not a comment",
        "LITERAL": "$HOME \\n stays",
        "ESCAPED": 'a"b\\c\nd',
        "URL": "https://example.com/a?b=c#frag",
        "NOTE": "value",
        "EMPTY": "",
        "BLANK": "",
        "HASH": "#not-a-comment",
    }


def test_env_words_split_as_a_shell_splits_them_and_win_over_the_file(tmp_path: Path) -> None:
    path = env_file(tmp_path, "A1=file\nB1=file\n")
    assert declared(path, "B1='two words' C1=x=y") == {"A1": "file", "B1": "two words", "C1": "x=y"}
    assert declared("", "") is None, "neither given: no environment declared"
    assert declared(env_file(tmp_path, "# nothing\n"), "") == {}, "an empty file declares none"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A1=ok\nnot a pair\n", ":2: not NAME=value"),
        (f"PASSWORD {SECRET}\n", ":1: not NAME=value"),
        ('QUOTED="unclosed\n', ":1: the value's \" is not closed on its line"),
        (f"Q1='{SECRET}' trailing\n", ":1: Q1's value has text after its closing quote"),
        ("1ABC=x\n", ":1: '1ABC' is not a name Lambda accepts"),
        ("_PRIVATE=x\n", ":1: '_PRIVATE' is not a name Lambda accepts"),
        ("X=x\n", ":1: 'X' is not a name Lambda accepts"),
        ("OK1=1\nAWS_REGION=eu-west-1\n", ":2: AWS_REGION is set by Lambda itself (reserved)"),
        ("AWS_LAMBDA_FUNCTION_NAME=f\n", ":1: AWS_LAMBDA_FUNCTION_NAME is set by Lambda itself"),
        ("LAMBDA_TASK_ROOT=/x\n", ":1: LAMBDA_TASK_ROOT is set by Lambda itself"),
        (f"AWS_SECRET_ACCESS_KEY={SECRET}\n", ":1: AWS_SECRET_ACCESS_KEY is set by Lambda"),
    ],
)
def test_a_malformed_line_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = env_file(tmp_path, text)
    with pytest.raises(BuildError) as raised:
        declared(path, "")
    message = str(raised.value)
    assert message.startswith(f"ENV_FILE={path}{expected}"), message
    assert "\n" not in message and SECRET not in message


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (f"A1=1 {SECRET}", "ENV: word 2 is not NAME=value"),
        (f"A1='{SECRET}", "ENV: a quote is not closed"),
        ("AWS_REGION=x", "ENV: AWS_REGION is set by Lambda itself (reserved): remove it"),
        (f"bad-name={SECRET}", "ENV: 'bad-name' is not a name Lambda accepts"),
    ],
)
def test_env_mistakes_are_one_line_without_values(words: str, expected: str) -> None:
    with pytest.raises(BuildError) as raised:
        declared("", words)
    assert str(raised.value).startswith(expected), str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_missing_file_and_lambdas_4_kb_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"^ENV_FILE=/nowhere/fn.env does not exist$"):
        declared("/nowhere/fn.env", "")
    big = env_file(tmp_path, f"BIG={'x' * 4094}\n")
    with pytest.raises(BuildError, match=r"environment is 4097 bytes .*Lambda takes at most 4096"):
        declared(big, "")


def test_the_built_environment_is_written_for_this_user_alone(tmp_path: Path) -> None:
    variables = {"TABLE_NAME": SECRET}
    write_environment(tmp_path, variables)
    path = tmp_path / ENVIRONMENT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_environment(tmp_path) == variables
    assert SECRET not in digest(variables) and len(digest(variables)) == 64
    write_environment(tmp_path, None)  # a build given no environment leaves none
    assert not path.exists() and read_environment(tmp_path) is None
