"""Stage 0, the build environment: one virtual environment per set of inputs,
holding only what the function declares.

PyInstaller bundles whatever the interpreter it runs in can import. Run in the
tool's own `.venv` (moto, boto3, cryptography, mypy, PyYAML, ...), it bundled
packages no requirements file named, so a build here hid a missing dependency
that failed everywhere else, and made zips three times larger. So each build
freezes in a venv of its own, made from the RUNPATH-free interpreter that
build/interpreter.py chooses, with:

  - requirements/build.txt (PyInstaller, its hooks, staticx, the runtime's httpx),
    installed with --require-hashes, as always;
  - the handler's requirements file, if any: with --require-hashes when the file
    carries hashes (pip-compile --generate-hashes), as written otherwise;
    ``only_binary`` refuses source distributions (no build code runs).

  - when the function imports boto3 or botocore and its requirements do not
    bring it, what Lambda's Python runtime would supply: requirements/
    provided-sdk.txt (build/provided_sdk.py; PROVIDED_SDK=0 turns it off).

Environments live in .cache/envs/<key>, the key a hash of the build pins, the
requirements file's content, the install options, the provided SDK and the
interpreter, so a second build of the same function reuses its environment (and
says so). The last few used are kept, within a size cap (build/caches.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from build import caches, provided_sdk
from build.errors import BuildError
from build.interpreter import choose
from build.paths import CACHE, ROOT
from build.provided_sdk import Provided, SdkUse

BUILD_PINS = ROOT / "requirements" / "build.txt"
ENVS = CACHE / "envs"
COMPLETE = ".staticlambda-complete"


@dataclass(frozen=True)
class BuildEnv:
    root: Path
    reused: bool
    provided: Provided | None = None  # what requirements/provided-sdk.txt added

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"


def has_hashes(requirements_text: str) -> bool:
    """pip's hash-checking mode starts at the first --hash; so does ours."""
    return "--hash=" in requirements_text


def base_interpreter() -> str:
    try:
        return choose(dict(os.environ))
    except SystemExit as e:  # interpreter.py's own one-line explanation
        raise BuildError(str(e.code).removeprefix("build: ")) from None


def interpreter_identity(python: str) -> str:
    probe = subprocess.run(
        [python, "-c", "import sys; print(sys.version); print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{os.path.realpath(python)}\n{probe.stdout}"


def env_key(
    identity: str, requirements: bytes | None, only_binary: bool, sdk: bytes | None = None
) -> str:
    digest = hashlib.sha256()
    parts = [
        BUILD_PINS.read_bytes(),
        requirements if requirements is not None else b"<none>",
        b"only-binary" if only_binary else b"any",
        identity.encode(),
    ]
    if sdk is not None:  # absent, the key of an environment made before the SDK was provided
        parts.append(sdk)
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def pip_install(python: Path, args: list[str], what: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"pip could not install {what} (its output is above)")


def requirements_args(requirements: Path, only_binary: bool) -> list[str]:
    args = ["-r", str(requirements)]
    if has_hashes(requirements.read_text(errors="replace")):
        args.insert(0, "--require-hashes")
    if only_binary:
        args.insert(0, "--only-binary=:all:")
    return args


def build_env(
    requirements: Path | None, only_binary: bool = False, sdk: SdkUse | None = None
) -> BuildEnv:
    """The environment for these inputs: made once, then reused; held by this build
    until it ends, while the least recently used others are pruned (build/caches.py)."""
    if requirements is not None and not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    sdk = sdk or SdkUse(enabled=False)
    base = base_interpreter()
    content = requirements.read_bytes() if requirements is not None else None
    root = ENVS / env_key(interpreter_identity(base), content, only_binary, sdk.env_key())
    # Two builds of the same requirements at once: the second waits for the first's env.
    with caches.making(root):
        env = make_env(base, root, requirements, content, only_binary, sdk)
    caches.use_env(root)
    if env.provided is not None:
        print(env.provided.line())
    provided_sdk.check_disabled(root, sdk, requirements)
    return env


def make_env(
    base: str,
    root: Path,
    requirements: Path | None,
    content: bytes | None,
    only_binary: bool,
    sdk: SdkUse,
) -> BuildEnv:
    if (root / COMPLETE).is_file():
        return BuildEnv(root, reused=True, provided=provided_sdk.provided_in(root))
    shutil.rmtree(root, ignore_errors=True)  # a build that died half-way
    made = subprocess.run([base, "-m", "venv", str(root)], check=False)
    if made.returncode != 0:
        raise BuildError(f"{base} -m venv {root} failed (its output is above)")
    env = BuildEnv(root, reused=False)
    pip_install(env.python, ["--require-hashes", "-r", str(BUILD_PINS)], str(BUILD_PINS))
    if requirements is not None:
        pip_install(env.python, requirements_args(requirements, only_binary), str(requirements))
    provided = provided_sdk.provide(env.python, root, sdk)
    (root / COMPLETE).write_text(content.decode(errors="replace") if content else "")
    return BuildEnv(root, reused=False, provided=provided)


def describe(env: BuildEnv, requirements: Path | None) -> str:
    where = env.root.relative_to(ROOT) if env.root.is_relative_to(ROOT) else env.root
    what = f"build pins + {requirements}" if requirements else "build pins only"
    if env.provided is not None:
        what += " + " + ", ".join(f"{n} {v}" for n, v in sorted(env.provided.distributions.items()))
    verb = "reused" if env.reused else "made"
    pinned = ""
    if requirements is not None:
        hashed = has_hashes(requirements.read_text(errors="replace"))
        pinned = (
            ", installed with --require-hashes"
            if hashed
            else ", its packages not hash-checked (no --hash in the file)"
        )
    return f"build env {verb}: {where} ({what}{pinned})"
