"""The build, stage by stage: `make build` and `make zip` run this.

python -m build.pipeline build [--handler m.f] [--src DIR] [--requirements FILE]
python -m build.pipeline zip
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from build.freeze import ROOT, BuildError, FreezeInputs, freeze, handler_module
from build.package import code_sha256, write_sha256_file, write_zip
from build.sbom import write_sbom
from build.static import make_static
from build.verify import verify_static

DEFAULT_HANDLER = "handlers.echo.handler"
CACHE = ROOT / ".cache"


@contextmanager
def stage(name: str) -> Iterator[None]:
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    yield
    print(f"    {name} done in {time.monotonic() - started:.1f} s", flush=True)


def install_requirements(requirements: Path) -> Path:
    """The handler's third-party packages, installed once per requirements file
    content into a folder of their own (the build tools' environment stays clean)."""
    if not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = CACHE / "deps" / key
    done = target / ".installed"
    if done.exists():
        print(f"    requirements: cached in {target.relative_to(ROOT)}")
        return target
    shutil.rmtree(target, ignore_errors=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"pip could not install {requirements} (its output is above)")
    done.touch()
    return target


def build(handler: str, src: Path | None, requirements: Path | None, dist: Path) -> Path:
    handler_module(handler)  # a malformed name fails before any slow stage
    if src is not None and not src.is_dir():
        raise BuildError(f"SRC={src} is not a directory")
    slug = hashlib.sha256(f"{handler}|{src}|{requirements}".encode()).hexdigest()[:12]
    workdir = CACHE / "build" / slug
    deps = None
    if requirements is not None:
        with stage("install requirements"):
            deps = install_requirements(requirements)
    with stage(f"freeze {handler} (PyInstaller)"):
        program = freeze(FreezeInputs(handler, src, deps, workdir))
    bootstrap = dist / "bootstrap"
    with stage("make static (staticx)"):
        make_static(program, bootstrap)
    with stage("verify"):
        for line in verify_static(bootstrap):
            print(f"    {line}")
    # The handler the binary runs, for `make deploy` to tell Lambda.
    (dist / "bootstrap.handler").write_text(handler + "\n")
    size = bootstrap.stat().st_size
    print(f"{bootstrap}: {size / 1e6:.1f} MB, static, handler {handler}")
    write_sbom(bootstrap, deps)  # dist/bootstrap.cdx.json, named in this summary
    return bootstrap


def zip_bootstrap(dist: Path) -> Path:
    bootstrap = dist / "bootstrap"
    if not bootstrap.is_file():
        raise BuildError(f"{bootstrap} does not exist: run `make build` first")
    zip_path = write_zip(bootstrap, dist / "function.zip")
    write_sha256_file(zip_path)
    print(f"{zip_path}: {zip_path.stat().st_size / 1e6:.1f} MB")
    print(f"CodeSha256: {code_sha256(zip_path)}")
    return zip_path


def optional_path(value: str) -> Path | None:
    return Path(value).resolve() if value.strip() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m build.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="freeze, make static, verify: DIST/bootstrap")
    b.add_argument("--handler", default=DEFAULT_HANDLER, help="module.function")
    b.add_argument("--src", default="", help="directory holding the handler's module")
    b.add_argument("--requirements", default="", help="the handler's requirements file")
    b.add_argument("--dist", default="dist")
    z = sub.add_parser("zip", help="DIST/function.zip and its .sha256")
    z.add_argument("--dist", default="dist")
    args = parser.parse_args(argv)
    dist = Path(args.dist).resolve()
    dist.mkdir(parents=True, exist_ok=True)
    commands: dict[str, Callable[[], object]] = {
        "build": lambda: build(
            args.handler or DEFAULT_HANDLER,
            optional_path(args.src),
            optional_path(args.requirements),
            dist,
        ),
        "zip": lambda: zip_bootstrap(dist),
    }
    try:
        commands[args.command]()
    except BuildError as e:
        print(f"build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
