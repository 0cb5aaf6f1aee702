"""A function written for AWS's Python runtime (tests/fixtures/apifunc), run two
ways under the official emulator: as the static bootstrap built from it, and
with awslambdaric 4.2.2 (AWS's own runtime) from a copy of its folder, as
/var/task holds it on Lambda, with the same requirements installed beside it.

Each run answers with what it saw and where its code folder was (its
LAMBDA_TASK_ROOT as the function read it), so the two can be compared with
each folder's path written as `$TASK_ROOT`.

Used by test_code_folder.py, test_package_metadata.py and test_tracebacks.py;
the two runs are made ready once a session (conftest.py).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import ROOT

from build.rie import Emulator

APIFUNC = ROOT / "tests" / "fixtures" / "apifunc"
TASK_ROOT = "$TASK_ROOT"


@dataclass
class Reply:
    """One invoke's reply and the runtime's log, its code folder's path replaced."""

    status: int
    body: Any
    log: str
    task_root: str = ""

    def errored(self) -> bool:
        return isinstance(self.body, dict) and "errorType" in self.body


@dataclass
class Runtime:
    """How to start one runtime on the function, as Lambda would."""

    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def invoke(self, *events: dict[str, Any], **env: str) -> list[Reply]:
        """The events one after the other in one execution environment."""
        environ = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
            "AWS_EC2_METADATA_DISABLED": "true",
            **self.env,
            **env,
        }
        with Emulator(self.command, env=environ, cwd=self.cwd) as rie:
            # The code folder as the function sees it: where its paths start.
            status, body = rie.invoke(json.dumps({"action": "files"}))
            assert status == 200, body
            task_root = json.loads(body)["task_root"]
            replies = []
            for event in events:
                status, body = rie.invoke(json.dumps(event))
                replies.append(Reply(status, json.loads(body), "", task_root))
            # As written: a log event's inner lines are joined by \r.
            log = rie.log_path.read_bytes().decode(errors="replace")
        for reply in replies:
            reply.body = json.loads(json.dumps(reply.body).replace(task_root, TASK_ROOT))
            reply.log = log.replace(task_root, TASK_ROOT)
        return replies


def static_bootstrap(dist: Path, tmp: Path) -> Runtime:
    """The bootstrap built from the function, started by the emulator as Lambda
    starts it: from its own folder, which is LAMBDA_TASK_ROOT (/var/task)."""
    return Runtime(
        [str(dist / "bootstrap")],
        dist,
        {"LAMBDA_TASK_ROOT": str(dist), "TMPDIR": str(tmp)},
    )


def awslambdaric(code: Path, deps: Path) -> Runtime:
    """awslambdaric from the function's folder, its requirements on the path:
    the managed runtime's layout (/var/task is the working directory and
    LAMBDA_TASK_ROOT, the requirements are installed in it)."""
    return Runtime(
        [sys.executable, "-m", "awslambdaric", "app.handler"],
        code,
        {
            "LAMBDA_TASK_ROOT": str(code),
            "PYTHONPATH": os.pathsep.join([str(code), str(deps)]),
        },
    )
