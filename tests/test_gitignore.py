""".gitignore: build/ is the pipeline's source, so a global gitignore made from
the common Python template (which ignores build/ and *.spec as output) must
not hide new files there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import ROOT

# What GitHub's Python.gitignore, often a developer's core.excludesFile, says of them.
PYTHON_TEMPLATE = "build/\ndist/\n*.spec\n"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="not a git checkout (or no git): nothing to ignore files in",
)
@pytest.mark.parametrize("path", ["build/new_stage.py", "build/other.spec", "build/sub/x.py"])
def test_a_new_file_under_build_is_not_ignored_by_a_global_python_template(
    tmp_path: Path, path: str
) -> None:
    excludes = tmp_path / "global-gitignore"
    excludes.write_text(PYTHON_TEMPLATE)
    git = ["git", "-C", str(ROOT), "-c", f"core.excludesFile={excludes}"]
    ignored = subprocess.run(
        [*git, "check-ignore", "--no-index", "-q", path], capture_output=True, check=False
    )
    assert ignored.returncode == 1, f"{path} is ignored"  # 0: ignored, 1: not
    # The template still applies where it should: dist/ stays ignored.
    dist = subprocess.run([*git, "check-ignore", "--no-index", "-q", "dist/x"], check=False)
    assert dist.returncode == 0
