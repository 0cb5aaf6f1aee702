"""The build, stage by stage: `make build` and `make zip` run this.

python -m build.pipeline build [--handler m.f] [--src DIR] [--requirements FILE] [options]
python -m build.pipeline zip [--handler m.f] [--src DIR] [--requirements FILE] [options]

`build` always builds. `zip` zips what was built: it rebuilds first only when
no bootstrap is there, when an input given differs from the one recorded
beside the binary (dist/bootstrap.inputs.json), or when a recorded input's
content changed; inputs not given are taken from the record, so
`make zip` after `make build ... REQUIREMENTS=f` never drops the requirements.

`--arch` (make: ARCH=x86_64|arm64, default this machine's) is an input like the
others, recorded with the build: on an x86_64 machine an arm64 build runs this
same pipeline inside an arm64 Debian root under qemu (build/archroot.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from build import archroot
from build.buildenv import BUILD_PINS, build_env, describe
from build.elf import ElfError, host_architecture, lambda_architecture
from build.errors import BuildError
from build.freeze import FreezeInputs, freeze, handler_module
from build.initcheck import DEFAULT_TIMEOUT, verify_init
from build.missing import unresolved_imports, warnings_file
from build.package import code_sha256, write_sha256_file, write_zip
from build.paths import CACHE, DEFAULT_HANDLER, ROOT
from build.sbom import write_sbom
from build.sources import (
    check_syntax,
    extra_data,
    handler_data,
    package_names,
    summary,
    walk,
)
from build.static import make_static
from build.verify import verify_static

RECORD = "bootstrap.inputs.json"
# What a build leaves in dist/; all of it goes before a new build starts, so no
# zip or handler name of another build stays next to a new bootstrap.
ARTEFACTS = (
    "bootstrap",
    "bootstrap.handler",
    RECORD,
    "bootstrap.cdx.json",
    "function.zip",
    "function.zip.sha256",
    "image.oci.tar",
    "image.oci.tar.sha256",
)


@contextmanager
def stage(name: str) -> Iterator[None]:
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    yield
    print(f"    {name} done in {time.monotonic() - started:.1f} s", flush=True)


@dataclass(frozen=True)
class Inputs:
    """Everything a build depends on that the user chooses."""

    handler: str = DEFAULT_HANDLER
    src: str = ""
    requirements: str = ""
    only_binary: bool = False
    excludes: tuple[str, ...] = ()
    add_data: tuple[str, ...] = ()
    init_check: bool = True
    arch: str = ""  # Lambda's name; "" (only in old records): this machine's

    @property
    def src_path(self) -> Path | None:
        return Path(self.src) if self.src else None

    @property
    def requirements_path(self) -> Path | None:
        return Path(self.requirements) if self.requirements else None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(inputs: Inputs) -> str:
    """A hash of every input's content: the handler's files, its requirements, the
    tool's own runtime and build code. Equal fingerprints, equal binaries."""
    digest = hashlib.sha256(json.dumps(asdict(inputs), sort_keys=True).encode())
    trees: list[tuple[Path, Sequence[str]]] = [
        (ROOT / "runtime", ()),
        (ROOT / "build", ()),
        (ROOT / "handlers", ()),
    ]
    if inputs.src_path is not None and inputs.src_path.is_dir():
        trees.append((inputs.src_path, inputs.excludes))
    for tree, excludes in trees:
        for path, relative in walk(tree, excludes):
            digest.update(f"{tree}/{relative}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    files = [BUILD_PINS] + ([inputs.requirements_path] if inputs.requirements_path else [])
    for extra in [*files, *(Path(a.partition(":")[0]) for a in inputs.add_data)]:
        if extra.is_file():
            digest.update(hashlib.sha256(extra.read_bytes()).digest())
        elif extra.is_dir():
            for path, relative in walk(extra, ()):
                digest.update(f"{relative}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def inside(path: Path, folder: Path) -> list[str]:
    """[path relative to folder] when path lies in it: a DIST inside SRC is not data."""
    try:
        return [path.resolve().relative_to(folder.resolve()).as_posix()]
    except ValueError:
        return []


def clear_artefacts(dist: Path) -> None:
    for name in ARTEFACTS:
        (dist / name).unlink(missing_ok=True)


def requirement_packages(python: Path) -> tuple[str, ...]:
    probe = subprocess.run(
        [str(python), str(ROOT / "build" / "package_data.py"), str(BUILD_PINS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BuildError(f"listing the requirements' packages failed: {probe.stderr[-300:]}")
    return tuple(json.loads(probe.stdout))


def check_unresolved_imports(workdir: Path, src: Path, requirements: Path | None) -> None:
    """What the init check cannot see: modules of SRC imported only later (build/missing.py)."""
    warnings = warnings_file(workdir)
    if warnings is None:
        return
    found = unresolved_imports(warnings.read_text(errors="replace"), package_names(src))
    if not found:
        return
    name, importer = found[0]
    where = (
        f"REQUIREMENTS={requirements}" if requirements else "a requirements file (REQUIREMENTS=)"
    )
    raise BuildError(
        f"module '{importer}' imports '{name}', which nothing bundled provides: "
        f"add the package that provides '{name.split('.')[0]}' to {where}"
    )


def build(
    handler: str,
    src: Path | None,
    requirements: Path | None,
    dist: Path,
    *,
    only_binary: bool = False,
    excludes: Sequence[str] = (),
    add_data: Sequence[str] = (),
    init_check: bool = True,
    init_timeout: float = DEFAULT_TIMEOUT,
    arch: str = "",
) -> Path:
    handler_module(handler)  # a malformed name fails before any slow stage
    if src is not None and not src.is_dir():
        raise BuildError(f"SRC={src} is not a directory")
    if requirements is not None and not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    arch = arch or host_architecture()
    if arch != host_architecture():
        return build_elsewhere(
            arch, handler, src, requirements, dist, only_binary, excludes, add_data, init_check
        )
    inputs = Inputs(
        handler,
        str(src or ""),
        str(requirements or ""),
        only_binary,
        tuple(excludes),
        tuple(add_data),
        init_check,
        arch,
    )
    data = []
    if src is not None:
        # A syntax error stops the build here, before anything slow.
        check_syntax(src, handler_module(handler), excludes)
        data = handler_data(
            src, [*excludes, *inside(dist, src)], skip=[requirements] if requirements else []
        )
    for spec in add_data:
        data += extra_data(spec)
    dist.mkdir(parents=True, exist_ok=True)
    clear_artefacts(dist)
    slug = hashlib.sha256(f"{handler}|{src}|{requirements}".encode()).hexdigest()[:12]
    workdir = CACHE / "build" / slug
    with stage("build environment"):
        env = build_env(requirements, only_binary)
        print(f"    {describe(env, requirements)}")
        packages = requirement_packages(env.python)
    print(f"    {summary(data)}" + (f"; excluded: {', '.join(excludes)}" if excludes else ""))
    with stage(f"freeze {handler} (PyInstaller)"):
        program = freeze(
            FreezeInputs(
                handler,
                src,
                env.python,
                workdir,
                data=tuple(data),
                requirements=requirements,
                package_data=packages,
            )
        )
    bootstrap = dist / "bootstrap"
    with stage("make static (staticx)"):
        make_static(program, bootstrap)
    with stage("verify"):
        for line in verify_static(bootstrap, arch):
            print(f"    {line}")
    if init_check:
        with stage("init check"):
            verify_init(bootstrap, handler, requirements, init_timeout)
    else:
        print("==> init check skipped (INIT_CHECK=0): the handler's import was not tried")
    if src is not None:
        check_unresolved_imports(workdir, src, requirements)
    # The handler the binary runs, for `make deploy` to tell Lambda.
    (dist / "bootstrap.handler").write_text(handler + "\n")
    record = {
        "architecture": arch,  # what `make zip` and `make deploy` read back
        "inputs": asdict(inputs),
        "fingerprint": fingerprint(inputs),
        "bootstrap_sha256": sha256_file(bootstrap),
    }
    (dist / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    size = bootstrap.stat().st_size
    print(f"{bootstrap}: {size / 1e6:.1f} MB, static, {arch}, handler {handler}")
    write_sbom(bootstrap, env.python, packages)  # dist/bootstrap.cdx.json, named in this summary
    return bootstrap


def build_inputs(wanted: Inputs, dist: Path) -> Path:
    """``build`` from a record's inputs (`make zip`'s rebuild, the command line's build)."""
    return build(
        wanted.handler,
        wanted.src_path,
        wanted.requirements_path,
        dist,
        only_binary=wanted.only_binary,
        excludes=wanted.excludes,
        add_data=wanted.add_data,
        init_check=wanted.init_check,
        arch=wanted.arch,
    )


def build_elsewhere(
    arch: str,
    handler: str,
    src: Path | None,
    requirements: Path | None,
    dist: Path,
    only_binary: bool,
    excludes: Sequence[str],
    add_data: Sequence[str],
    init_check: bool,
) -> Path:
    """This build, run by the pipeline of an ``arch`` build root (build/archroot.py)."""
    args = [
        f"--handler={handler}",
        f"--src={src or ''}",
        f"--requirements={requirements or ''}",
        f"--only-binary={int(only_binary)}",
        f"--exclude={' '.join(excludes)}",
        f"--add-data={' '.join(add_data)}",
        f"--init-check={int(init_check)}",
        f"--dist={dist}",
        f"--arch={arch}",
    ]
    dist.mkdir(parents=True, exist_ok=True)
    seen = [dist, *([src] if src else []), *([requirements] if requirements else [])]
    seen += [Path(a.partition(":")[0]).resolve() for a in add_data]
    archroot.build_in_root(arch, args, seen)
    bootstrap = dist / "bootstrap"
    if read_record(dist) is None:
        raise BuildError(f"the {arch} build root left no recorded {bootstrap}")
    return bootstrap


def read_record(dist: Path) -> dict[str, object] | None:
    """The record beside dist/bootstrap, if it describes that very file."""
    bootstrap, record_path = dist / "bootstrap", dist / RECORD
    if not bootstrap.is_file() or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("bootstrap_sha256") != sha256_file(bootstrap):
        return None
    return record


def recorded_inputs(record: dict[str, object]) -> Inputs:
    raw = dict(record["inputs"])  # type: ignore[call-overload]
    raw["excludes"] = tuple(raw.get("excludes", ()))
    raw["add_data"] = tuple(raw.get("add_data", ()))
    return Inputs(**raw)


def zip_bootstrap(dist: Path, given: dict[str, object] | None = None) -> Path:
    """Zip what was built; rebuild first only when the inputs say so (see top)."""
    record = read_record(dist)
    base = recorded_inputs(record) if record else Inputs()
    wanted = replace(base, **(given or {}))  # type: ignore[arg-type]
    if record is None:
        why = (
            "no bootstrap was built"
            if not (dist / "bootstrap").exists()
            else f"{dist / 'bootstrap'} is not the one its record describes"
        )
        print(f"zip: building first: {why}")
    elif wanted != base:
        changed = [k for k in asdict(wanted) if asdict(wanted)[k] != asdict(base)[k]]
        print(f"zip: building first: {', '.join(changed)} differ from the last build's")
    elif fingerprint(wanted) != record.get("fingerprint"):
        print("zip: building first: files of the last build's inputs changed")
    else:
        print(
            f"zip: {dist / 'bootstrap'} as built (HANDLER={wanted.handler}"
            f" SRC={wanted.src or '-'} REQUIREMENTS={wanted.requirements or '-'}"
            f" ARCH={record.get('architecture', '?')})"
        )
        return write_function_zip(dist)
    if record is not None and given is not None and base != Inputs():
        print(
            "    inputs not given are the last build's: "
            + ", ".join(f"{k}={v}" for k, v in asdict(wanted).items() if k not in given)
        )
    build_inputs(wanted, dist)
    return write_function_zip(dist)


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


def words(value: str | None) -> tuple[str, ...]:
    """EXCLUDE / ADD_DATA: space- or newline-separated."""
    return tuple((value or "").split())


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
    if args.arch is not None and args.arch.strip():
        given["arch"] = lambda_architecture(args.arch.strip())
    return given


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m build.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_input_options(sub.add_parser("build", help="freeze, make static, verify: DIST/bootstrap"))
    add_input_options(sub.add_parser("zip", help="DIST/function.zip of what was built"))
    args = parser.parse_args(argv)
    dist = Path(args.dist).resolve()
    try:
        given = given_inputs(args)
        if args.command == "build":
            wanted = replace(Inputs(), **given)  # type: ignore[arg-type]
            build_inputs(wanted, dist)
        else:
            zip_bootstrap(dist, given)
    except (BuildError, ElfError) as e:
        print(f"build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
