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

Environments live in .cache/envs/<key>, the key a hash of the build pins, the
requirements file's content, the install options and the interpreter, so a
second build of the same function reuses its environment (and says so).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from build.errors import BuildError
from build.interpreter import choose
from build.paths import CACHE, ROOT

BUILD_PINS = ROOT / "requirements" / "build.txt"
ENVS = CACHE / "envs"
COMPLETE = ".staticlambda-complete"


@dataclass(frozen=True)
class BuildEnv:
    root: Path
    reused: bool

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


def env_key(identity: str, requirements: bytes | None, only_binary: bool) -> str:
    digest = hashlib.sha256()
    for part in (
        BUILD_PINS.read_bytes(),
        requirements if requirements is not None else b"<none>",
        b"only-binary" if only_binary else b"any",
        identity.encode(),
    ):
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


def build_env(requirements: Path | None, only_binary: bool = False) -> BuildEnv:
    """The environment for these inputs: made once, then reused."""
    if requirements is not None and not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    base = base_interpreter()
    content = requirements.read_bytes() if requirements is not None else None
    root = ENVS / env_key(interpreter_identity(base), content, only_binary)
    ENVS.mkdir(parents=True, exist_ok=True)
    # Two builds of the same requirements at once: the second waits for the first's env.
    with open(ENVS / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return make_env(base, root, requirements, content, only_binary)


def make_env(
    base: str, root: Path, requirements: Path | None, content: bytes | None, only_binary: bool
) -> BuildEnv:
    if (root / COMPLETE).is_file():
        return BuildEnv(root, reused=True)
    shutil.rmtree(root, ignore_errors=True)  # a build that died half-way
    made = subprocess.run([base, "-m", "venv", str(root)], check=False)
    if made.returncode != 0:
        raise BuildError(f"{base} -m venv {root} failed (its output is above)")
    env = BuildEnv(root, reused=False)
    pip_install(env.python, ["--require-hashes", "-r", str(BUILD_PINS)], str(BUILD_PINS))
    if requirements is not None:
        pip_install(env.python, requirements_args(requirements, only_binary), str(requirements))
    (root / COMPLETE).write_text(content.decode(errors="replace") if content else "")
    return env


def describe(env: BuildEnv, requirements: Path | None) -> str:
    where = env.root.relative_to(ROOT) if env.root.is_relative_to(ROOT) else env.root
    what = f"build pins + {requirements}" if requirements else "build pins only"
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
