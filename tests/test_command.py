"""What the build's command lines share (build/command.py): make's words, the
docstring as --help, and a user's error as one line and exit status 1."""

from __future__ import annotations

import pytest

from build.command import command_line, exit_status, words
from build.errors import BuildError, InvokeError


def test_words_split_on_spaces_and_newlines() -> None:
    assert words("a*.md  tests/\nlocal.cfg") == ("a*.md", "tests/", "local.cfg")
    assert words("") == ()
    assert words(None) == ()


def test_success_is_exit_status_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status("build", lambda: None) == 0
    assert capsys.readouterr().err == ""


def test_a_users_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def fails() -> None:
        raise BuildError("SRC=x is not a directory")

    assert exit_status("image", fails) == 1
    assert capsys.readouterr().err == "image: SRC=x is not a directory\n"


def test_only_the_errors_named_are_caught() -> None:
    def fails() -> None:
        raise InvokeError("not a build error")

    with pytest.raises(InvokeError):
        exit_status("build", fails)
    assert exit_status("build", fails, (BuildError, InvokeError)) == 1
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        exit_status("build", lambda: 1 / 0)


def test_help_is_the_docstring_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    doc = "A command.\n\n    indented  as   written\n"
    with pytest.raises(SystemExit) as ended:
        command_line("build.example", doc).parse_args(["--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m build.example")
    assert "    indented  as   written\n" in out
