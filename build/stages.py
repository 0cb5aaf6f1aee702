"""The build's stages, in order: checks, build environment, freeze, static, verify,
init check, record. `python -m build.pipeline build` and `make zip`'s rebuild run them.

Every stage prints its name and its time (``stage``). A build first removes what an
earlier one left in dist/ (``ARTEFACTS``), so no zip or handler name of another build
stays next to a new bootstrap, and records what was asked (a failed build leaves that,
build/record.py); then it checks HANDLER and the function's environment before anything
slow (build/handler_name.py, build/function_env.py); it ends with the record and the SBOM.

A build for an architecture other than this machine's (ARCH=) is run by this same
pipeline inside a Debian root of that architecture, under qemu (``build_elsewhere``,
build/archroot.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from build import archroot, caches, handler_name
from build.atomic import replace_file
from build.buildenv import BUILD_PINS, build_env, describe
from build.elf import host_architecture
from build.errors import BuildError
from build.freeze import FreezeInputs, freeze
from build.function_env import ENVIRONMENT_FILE, declared, digest, write_environment
from build.initcheck import DEFAULT_TIMEOUT, verify_init
from build.missing import unresolved_imports, warnings_file
from build.paths import CACHE, ROOT
from build.provided_sdk import scan as scan_sdk_imports
from build.record import RECORD, Inputs, read_record, write_record, write_request
from build.sbom import write_sbom
from build.sources import check_syntax, extra_data, handler_data, package_names, summary
from build.static import make_static
from build.verify import verify_static

# What a build leaves in dist/; all of it goes before a new build starts, so no
# zip or handler name of another build stays next to a new bootstrap.
ARTEFACTS = (
    "bootstrap",
    "bootstrap.handler",
    RECORD,
    ENVIRONMENT_FILE,
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
    provided_sdk: bool = True,
    env_file: str = "",
    env_words: str = "",
) -> Path:
    arch = arch or host_architecture()
    inputs = Inputs(
        handler,
        str(src or ""),
        str(requirements or ""),
        only_binary,
        tuple(excludes),
        tuple(add_data),
        init_check,
        arch,
        provided_sdk=provided_sdk,
        env_file=env_file,
        env=env_words,
    )
    # What was asked replaces what an earlier build left, first: if this build fails,
    # the next `make zip` builds this again (never the default handler, never the old zip).
    dist.mkdir(parents=True, exist_ok=True)
    clear_artefacts(dist)
    write_request(dist, inputs)
    if src is not None and not src.is_dir():
        raise BuildError(f"SRC={src} is not a directory")
    if requirements is not None and not requirements.is_file():
        raise BuildError(f"REQUIREMENTS={requirements} does not exist")
    name = handler_name.check_handler(handler, src, requirements)
    environment = declared(env_file, env_words)
    if arch != host_architecture():
        return build_elsewhere(arch, inputs, dist)
    data = []
    if src is not None:
        # A syntax error stops the build here, before anything slow.
        check_syntax(src, name.module, excludes)
        data = handler_data(
            src, [*excludes, *inside(dist, src)], skip=[requirements] if requirements else []
        )
    for spec in add_data:
        data += extra_data(spec)
    slug = hashlib.sha256(f"{handler}|{src}|{requirements}".encode()).hexdigest()[:12]
    workdir = CACHE / "build" / slug
    caches.use_workdir(workdir)  # held until the build ends; older ones pruned
    sdk = scan_sdk_imports(src, name.module, excludes, provided_sdk)
    with stage("build environment"):
        env = build_env(requirements, only_binary, sdk)
        print(f"    {describe(env, requirements)}")
        packages = requirement_packages(env.python)
        if name.path is None and requirements is not None:
            handler_name.check_installed(name, env.python, requirements)
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
    init_stage(bootstrap, handler, requirements, init_check, environment, init_timeout)
    if src is not None:
        check_unresolved_imports(workdir, src, requirements)
    # The handler the binary runs, for `make deploy` to tell Lambda.
    replace_file(dist / "bootstrap.handler", handler + "\n")
    write_environment(dist, environment)
    write_record(dist, inputs, arch, digest(environment))
    size = bootstrap.stat().st_size
    print(f"{bootstrap}: {size / 1e6:.1f} MB, static, {arch}, handler {handler}")
    write_sbom(bootstrap, env.python, packages)  # dist/bootstrap.cdx.json, named in this summary
    return bootstrap


def init_stage(
    bootstrap: Path,
    handler: str,
    requirements: Path | None,
    init_check: bool,
    environment: dict[str, str] | None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """The init check stage, with the function's environment (names said, never values)."""
    if not init_check:
        print("==> init check skipped (INIT_CHECK=0): the handler's import was not tried")
        return
    with stage("init check"):
        if environment:
            print(f"    environment: {', '.join(sorted(environment))} (ENV_FILE/ENV)")
        verify_init(bootstrap, handler, requirements, timeout, environment or {})


def check_environment_again(
    wanted: Inputs, dist: Path, record: dict[str, object], check: bool = True
) -> Path:
    """Only the function's environment changed (or, ``check`` False, only how it is
    given): the bootstrap stays, its init is checked again with the new one as the
    build would check it, and the record says so."""
    environment = declared(wanted.env_file, wanted.env)
    bootstrap = dist / "bootstrap"
    if check:
        init_stage(
            bootstrap, wanted.handler, wanted.requirements_path, wanted.init_check, environment
        )
    write_environment(dist, environment)
    write_record(dist, wanted, str(record.get("architecture", wanted.arch)), digest(environment))
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
        provided_sdk=wanted.provided_sdk,
        env_file=wanted.env_file,
        env_words=wanted.env,
    )


def build_elsewhere(arch: str, inputs: Inputs, dist: Path) -> Path:
    """This build, run by the pipeline of an ``arch`` build root (build/archroot.py)."""
    args = [
        f"--handler={inputs.handler}",
        f"--src={inputs.src}",
        f"--requirements={inputs.requirements}",
        f"--only-binary={int(inputs.only_binary)}",
        f"--exclude={' '.join(inputs.excludes)}",
        f"--add-data={' '.join(inputs.add_data)}",
        f"--init-check={int(inputs.init_check)}",
        f"--provided-sdk={int(inputs.provided_sdk)}",
        f"--env-file={inputs.env_file}",
        f"--env={inputs.env}",
        f"--dist={dist}",
        f"--arch={arch}",
    ]
    seen = [dist, *([inputs.src_path] if inputs.src_path else [])]
    seen += [inputs.requirements_path] if inputs.requirements_path else []
    seen += [Path(inputs.env_file).resolve()] if inputs.env_file else []
    seen += [Path(a.partition(":")[0]).resolve() for a in inputs.add_data]
    archroot.build_in_root(arch, args, seen)
    bootstrap = dist / "bootstrap"
    if read_record(dist) is None:
        raise BuildError(f"the {arch} build root left no recorded {bootstrap}")
    return bootstrap
