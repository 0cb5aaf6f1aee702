"""`sam build` through staticlambda: one function of a SAM template, built into ARTIFACTS_DIR.

AWS SAM's `BuildMethod: makefile` copies the function's CodeUri to a scratch folder and runs
`make --makefile <CodeUri>/Makefile build-<LogicalId>` there, with ARTIFACTS_DIR set; it
gives the rule no handler. The user's rule names the handler once (staticlambda.mk,
`$(call staticlambda,app.handler)`) and this builds it:

    source      SAM's scratch copy, copied again to .cache/sam/<LogicalId>-<key>/src: the
                scratch folder's name is new at every `sam build`, and the build's work
                folder (.cache/build/<hash of handler, SRC, requirements>) would be too, one
                more left behind per build. The key is a hash of CodeUri, so two functions
                (or two templates' functions of one name) never share a folder
    requirements  requirements.txt in CodeUri, when there is one
    build       the ordinary build (build/stages.py: its own build environment, freeze,
                staticx, verify, init check) into .cache/sam/<LogicalId>-<key>/dist; the
                Makefile itself is not data
    artifact    that dist's bootstrap copied into ARTIFACTS_DIR, alone: SAM zips the whole
                folder as the function's code. The SBOM stays beside the build (the path
                is printed), not in the function

One build per function folder at a time (a lock), so `sam build --parallel` builds two
functions side by side and the same function twice in a row. Native only: the build runs
on the machine `sam build` runs on (Linux), never in a container.

    python -m build.sam --logical-id ID --handler m.f --src DIR --code-uri DIR
                        --artifacts-dir DIR [--exclude "pat ..."] [--only-binary 1]
                        [--init-check 0]
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from build.atomic import PROGRAM_MODE, replacing
from build.command import command_line, exit_status, words
from build.errors import BuildError
from build.freeze import handler_module
from build.paths import CACHE
from build.stages import build

SAM_CACHE = CACHE / "sam"
REQUIREMENTS_FILE = "requirements.txt"
# What SAM's scratch copy holds that is no data of the function.
NOT_DATA = ("Makefile",)
# CloudFormation's logical ids: alphanumeric only.
LOGICAL_ID = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class SamFunction:
    """One `make build-<LogicalId>` as SAM runs it."""

    logical_id: str
    handler: str
    scratch: Path  # SAM's copy of CodeUri, the rule's working folder
    code_uri: Path  # the function's folder in the user's project, for the cache key
    artifacts_dir: Path | None  # None: ARTIFACTS_DIR was not set

    @property
    def home(self) -> Path:
        key = hashlib.sha256(str(self.code_uri).encode()).hexdigest()[:12]
        return SAM_CACHE / f"{self.logical_id}-{key}"


def check(function: SamFunction) -> Path:
    """Every mistake in the rule or its call, in one line, before anything is copied;
    returns ARTIFACTS_DIR."""
    if not LOGICAL_ID.match(function.logical_id):
        raise BuildError(
            f"{function.logical_id!r} is not a SAM logical id: name the rule build-<LogicalId>"
        )
    if not function.handler:
        raise BuildError(
            f"build-{function.logical_id} names no handler: "
            "$(call staticlambda,module.function) in its Makefile rule"
        )
    handler_module(function.handler)
    if function.artifacts_dir is None:
        raise BuildError(
            "ARTIFACTS_DIR is not set: `sam build` sets it; to try the rule without SAM, "
            "run make build-<LogicalId> ARTIFACTS_DIR=<folder>"
        )
    if not function.scratch.is_dir():
        raise BuildError(f"{function.scratch} is not a directory")
    return function.artifacts_dir


def stage_source(function: SamFunction) -> Path:
    """SAM's scratch copy, copied to the function's own stable folder."""
    src = function.home / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(function.scratch, src, symlinks=True)
    return src


def sam_build(
    function: SamFunction,
    *,
    excludes: tuple[str, ...] = (),
    only_binary: bool = False,
    init_check: bool = True,
) -> Path:
    artifacts_dir = check(function)
    function.home.mkdir(parents=True, exist_ok=True)
    with open(function.home.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = stage_source(function)
        requirements = src / REQUIREMENTS_FILE
        dist = function.home / "dist"
        bootstrap = build(
            function.handler,
            src,
            requirements if requirements.is_file() else None,
            dist,
            only_binary=only_binary,
            excludes=(*NOT_DATA, *excludes),
            init_check=init_check,
        )
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        artifact = artifacts_dir / "bootstrap"
        with replacing(artifact, PROGRAM_MODE) as copy:
            shutil.copyfile(bootstrap, copy)
    print(
        f"sam: {function.logical_id}: {artifact} ({artifact.stat().st_size / 1e6:.1f} MB, "
        f"handler {function.handler}); SBOM {dist / 'bootstrap.cdx.json'}"
    )
    return artifact


def main(argv: list[str] | None = None) -> int:
    parser = command_line("build.sam", __doc__)
    parser.add_argument("--logical-id", required=True, help="the function's logical id")
    parser.add_argument("--handler", default="", help="module.function")
    parser.add_argument("--src", required=True, help="SAM's scratch copy of CodeUri")
    parser.add_argument("--code-uri", required=True, help="the function's own folder")
    parser.add_argument("--artifacts-dir", default="", help="SAM's ARTIFACTS_DIR")
    parser.add_argument("--exclude", default="", help="patterns of files not to bundle")
    parser.add_argument("--only-binary", default="", help="1: install wheels only")
    parser.add_argument("--init-check", default="", help="0: do not start the binary once")
    args = parser.parse_args(argv)
    function = SamFunction(
        args.logical_id,
        args.handler.strip(),
        Path(args.src).resolve(),
        Path(args.code_uri).resolve(),
        Path(args.artifacts_dir).resolve() if args.artifacts_dir.strip() else None,
    )
    return exit_status(
        "build",
        lambda: sam_build(
            function,
            excludes=words(args.exclude),
            only_binary=args.only_binary.strip() not in ("", "0"),
            init_check=args.init_check.strip() != "0",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
