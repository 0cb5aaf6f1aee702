"""build/sources.py: which files of SRC go into the bundle's tree (its data and
its `.py` sources), and the syntax check that runs before anything is frozen."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.errors import BuildError
from build.sources import check_syntax, extra_data, handler_data, summary


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def dests(data: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(f.dest.removeprefix("./") for f in data)


def test_data_and_sources_are_files_at_their_relative_path(tmp_path: Path) -> None:
    src = tree(
        tmp_path,
        {
            "app.py": "",
            "templates/hello.txt": "hi",
            "pkg/__init__.py": "",
            "pkg/rules.json": "{}",
            "tests/fixture.json": "{}",
            "README.md": "",
            ".env": "SECRET=1",
            ".git/config": "",
            "__pycache__/app.cpython-311.pyc": "",
            "stray.pyc": "",
            "venv/pyvenv.cfg": "",
            "venv/lib/x.txt": "",
            "node_modules/x/index.js": "",
            "requirements.txt": "six",
        },
    )
    data = handler_data(src, [], skip=[src / "requirements.txt"])
    assert dests(data) == [
        "README.md",
        "app.py",
        "pkg/__init__.py",
        "pkg/rules.json",
        "templates/hello.txt",
        "tests/fixture.json",
    ]
    assert sorted(f.dest for f in data if f.is_python_source) == ["app.py", "pkg/__init__.py"]
    fewer = handler_data(src, ["tests", "*.md"], skip=[src / "requirements.txt"])
    assert dests(fewer) == ["app.py", "pkg/__init__.py", "pkg/rules.json", "templates/hello.txt"]
    assert summary(fewer) == (
        "data files: 2 (pkg/rules.json, templates/hello.txt); 2 .py sources as files"
    )
    assert summary(handler_data(src, ["*.*"])) == "data files: none"


def test_add_data_takes_a_file_or_a_folder_under_a_destination(tmp_path: Path) -> None:
    tree(tmp_path, {"shared/config.json": "{}", "models/a/m.bin": "x", "models/b.bin": "y"})
    assert dests(extra_data(str(tmp_path / "shared/config.json"))) == ["config.json"]
    assert dests(extra_data(f"{tmp_path / 'models'}:data/models")) == [
        "data/models/a/m.bin",
        "data/models/b.bin",
    ]
    assert dests(extra_data(str(tmp_path / "models"))) == ["models/a/m.bin", "models/b.bin"]
    with pytest.raises(BuildError, match=r"ADD_DATA=.*nope does not exist"):
        extra_data(str(tmp_path / "nope"))


def test_a_syntax_error_anywhere_in_src_is_named_with_file_and_line(tmp_path: Path) -> None:
    src = tree(tmp_path, {"app.py": "x = 1\n", "pkg/__init__.py": "", "pkg/bad.py": "def f(:\n"})
    with pytest.raises(BuildError) as raised:
        check_syntax(src, "app")
    assert str(raised.value).startswith(
        "Runtime.UserCodeSyntaxError: Syntax error in module 'pkg.bad': "
    )
    assert str(raised.value).endswith(f"({src / 'pkg/bad.py'}, line 1)")
    assert check_syntax(src, "app", excludes=["pkg"]) == 1  # EXCLUDE leaves it out
