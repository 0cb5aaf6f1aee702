"""The build, stage by stage: `make build` and `make zip` run this.

python -m build.pipeline build [--handler m.f] [--src DIR] [--requirements FILE] [options]
python -m build.pipeline zip [--handler m.f] [--src DIR] [--requirements FILE] [options]
python -m build.pipeline bootstrap [the same options]

`build` always builds. `zip` zips what was built: it rebuilds first only when
no bootstrap is there, when an input given differs from the one recorded
beside the binary (dist/bootstrap.inputs.json), or when a recorded input's
content changed; inputs not given are taken from the record, so
`make zip` after `make build ... REQUIREMENTS=f` never drops the requirements.
A build that failed leaves the record of what it was asked, so the next `zip`
builds that again; only where no build was ever asked for (a fresh clone, after
`make clean`) does it build the default echo handler, and it says so. When only
the function's environment changed (ENV_FILE's content, ENV), the bootstrap stays
and its init check runs again. `bootstrap` is `zip` without the zip: `make invoke`
runs it first, so it never runs an out-of-date binary.

`--arch` (make: ARCH=x86_64|arm64, default this machine's) is an input like the
others, recorded with the build: on an x86_64 machine an arm64 build runs this
same pipeline inside an arm64 Debian root under qemu (build/archroot.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from build.command import command_line, exit_status, words
from build.elf import ElfError, host_architecture, lambda_architecture
from build.errors import BuildError
from build.function_env import declared, digest
from build.package import code_sha256, write_sha256_file, write_zip
from build.paths import DEFAULT_HANDLER
from build.record import (
    Inputs,
    environment_changed,
    read_inputs,
    read_record,
    rebuild_reason,
)
from build.stages import build_inputs, check_environment_again


def zip_bootstrap(dist: Path, given: dict[str, object] | None = None) -> Path:
    """Zip what was built; rebuild first only when the inputs say so (see top)."""
    current_bootstrap(dist, given or {}, "zip")
    return write_function_zip(dist)


def current_bootstrap(dist: Path, given: dict[str, object], command: str) -> Path:
    """DIST/bootstrap as asked: the last build's inputs, with those ``given``; built
    again first, or its init checked again, only when they say so (see top)."""
    record = read_record(dist)
    last = read_inputs(dist)
    base = last[0] if last is not None else Inputs()
    wanted = replace(base, **given)  # type: ignore[arg-type]
    why = rebuild_reason(dist, record, base, wanted)
    if why is None and record is not None:
        environment = declared(wanted.env_file, wanted.env)
        changed = environment_changed(record, digest(environment))
        arch = str(record.get("architecture", "?"))
        if changed and wanted.init_check and arch != host_architecture():
            why = "the function's environment changed (its init check runs in the build root)"
        elif changed or wanted != base:
            if changed:
                print(
                    f"{command}: the function's environment (ENV_FILE/ENV) changed: "
                    + ("the init check runs again; " if wanted.init_check else "")
                    + f"{dist / 'bootstrap'} stays as built"
                )
            return check_environment_again(wanted, dist, record, check=changed)
        else:
            print(
                f"{command}: {dist / 'bootstrap'} as built (HANDLER={wanted.handler}"
                f" SRC={wanted.src or '-'} REQUIREMENTS={wanted.requirements or '-'} ARCH={arch}"
                + (f" ENV_FILE={wanted.env_file}" if wanted.env_file else "")
                + ")"
            )
            return dist / "bootstrap"
    if last is None and "handler" not in given:
        print(
            f"{command}: nothing was built in {dist} and no HANDLER was given: building the "
            f"default echo handler ({DEFAULT_HANDLER}); yours: HANDLER=module.function "
            "SRC=<its folder>"
        )
    else:
        print(f"{command}: building first: {why}")
    if last is not None and given and base != Inputs():
        print(
            "    inputs not given are the last build's: "
            + ", ".join(shown(k, v) for k, v in asdict(wanted).items() if k not in given)
        )
    return build_inputs(wanted, dist)


def shown(name: str, value: object) -> str:
    """An input as printed: ENV's values never (they may be secrets), only its names."""
    if name == "env" and isinstance(value, str) and value.strip():
        names = [w.partition("=")[0] for w in value.split()]
        return f"env=({' '.join(names)})"
    return f"{name}={value}"


def write_function_zip(dist: Path) -> Path:
    bootstrap = dist / "bootstrap"
    if not bootstrap.is_file():
        raise BuildError(f"{bootstrap} does not exist: run `make build` first")
    zip_path = write_zip(bootstrap, dist / "function.zip")
    write_sha256_file(zip_path)
    print(f"{zip_path}: {zip_path.stat().st_size / 1e6:.1f} MB")
    print(f"CodeSha256: {code_sha256(zip_path.read_bytes())}")
    return zip_path


def optional_path(value: str) -> Path | None:
    return Path(value).resolve() if value.strip() else None


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Options left unset (None) are "not given": `zip` takes them from the record."""
    parser.add_argument("--handler", help=f"module.function (default {DEFAULT_HANDLER})")
    parser.add_argument("--src", help="directory holding the handler's module")
    parser.add_argument("--requirements", help="the handler's requirements file")
    parser.add_argument("--only-binary", help="1: install wheels only (no sdist build code)")
    parser.add_argument("--exclude", help="patterns of SRC files not to bundle")
    parser.add_argument("--add-data", help="path[:dest] ... more files to bundle")
    parser.add_argument("--init-check", help="0: do not start the binary once at build")
    parser.add_argument("--arch", help="x86_64 or arm64 (default: this machine's)")
    parser.add_argument("--provided-sdk", help="0: never add boto3 as Lambda's runtime has it")
    parser.add_argument("--env-file", help="the function's environment: a dotenv file")
    parser.add_argument("--env", help="the function's environment: NAME=value ...")
    parser.add_argument("--dist", default="dist")


def given_inputs(args: argparse.Namespace) -> dict[str, object]:
    given: dict[str, object] = {}
    if args.handler is not None:
        given["handler"] = args.handler or DEFAULT_HANDLER
    if args.src is not None:
        given["src"] = str(optional_path(args.src) or "")
    if args.requirements is not None:
        given["requirements"] = str(optional_path(args.requirements) or "")
    if args.only_binary is not None:
        given["only_binary"] = args.only_binary.strip() not in ("", "0")
    if args.exclude is not None:
        given["excludes"] = words(args.exclude)
    if args.add_data is not None:
        given["add_data"] = tuple(
            str(Path(w.partition(":")[0]).resolve()) + w[len(w.partition(":")[0]) :]
            for w in words(args.add_data)
        )
    if args.init_check is not None:
        given["init_check"] = args.init_check.strip() != "0"
    if args.provided_sdk is not None:
        given["provided_sdk"] = args.provided_sdk.strip() != "0"
    if args.arch is not None and args.arch.strip():
        given["arch"] = lambda_architecture(args.arch.strip())
    if args.env_file is not None:
        given["env_file"] = str(optional_path(args.env_file) or "")
    if args.env is not None:
        given["env"] = args.env
    return given


def run(args: argparse.Namespace) -> Path:
    """The command: DIST/bootstrap for `build`, DIST/function.zip for `zip`."""
    dist = Path(args.dist).resolve()
    given = given_inputs(args)
    if args.command == "build":
        return build_inputs(replace(Inputs(), **given), dist)  # type: ignore[arg-type]
    if args.command == "bootstrap":
        return current_bootstrap(dist, given, "bootstrap")
    return zip_bootstrap(dist, given)


def main(argv: list[str] | None = None) -> int:
    parser = command_line("build.pipeline", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_input_options(sub.add_parser("build", help="freeze, make static, verify: DIST/bootstrap"))
    add_input_options(sub.add_parser("zip", help="DIST/function.zip of what was built"))
    add_input_options(
        sub.add_parser("bootstrap", help="DIST/bootstrap as asked, rebuilt only when zip would")
    )
    args = parser.parse_args(argv)
    return exit_status("build", lambda: run(args), (BuildError, ElfError))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
