"""The AWS SDK for Python as Lambda's managed runtime provides it.

AWS's Python runtimes ship boto3 and botocore on the import path (/var/runtime,
after the function's own /var/task), so published functions import boto3 and
leave it out of their requirements. A static bootstrap holds only what its
build environment had, so such a function used to fail the build with
"No module named 'boto3'". Now, when the function imports boto3 or botocore and
its requirements do not bring it, the build environment gets what Lambda's
runtime would have supplied: every distribution of requirements/provided-sdk.txt
(boto3, botocore, s3transfer, jmespath, python-dateutil, six, urllib3; pinned by
hash, its version and source in requirements/provided-sdk.in) that the
requirements did not install. Like /var/runtime, it only fills gaps: a
distribution the requirements brought (their boto3, or a botocore that
aws-xray-sdk pulled in) is theirs, and ours go in with --no-deps beside it.

Who imports it is read from the function's own sources (SRC, or the shipped
handler's module) before anything is installed (``scan``, an AST walk that also
sees imports inside functions, `try` and `if`), so the decision is part of the
environment's key. Dependencies are not scanned: many import boto3 only if it is
there (Powertools' Logger does), and once boto3 is in the environment
PyInstaller follows those optional imports into the bundle, so providing it for
them would make every such function larger and slower to start. A dependency
that needs boto3 (Powertools' parameters or idempotency utilities) still needs
it in the requirements (aws-lambda-powertools[aws-sdk], or boto3 itself), or an
`import boto3` in the function's own code.

`PROVIDED_SDK=0` (--provided-sdk=0) turns it off; then a function whose code
imports boto3 (outside `try` and `if`) without a requirement for it fails right
after the build environment, in one line.

What was provided is written in the environment (``MARKER``), so a reused
environment says so again, and the SBOM names those packages' part
`provided-sdk` (build/sbom/python_packages.py).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from build.errors import BuildError
from build.paths import ROOT
from build.sources import module_name, walk

SDK_PINS = ROOT / "requirements" / "provided-sdk.txt"
SDK_MODULES = ("boto3", "botocore")  # the import names, also their distributions' names
MARKER = ".staticlambda-provided-sdk.json"
TOGGLE = "PROVIDED_SDK=0"


@dataclass(frozen=True)
class SdkImport:
    module: str  # the importing module, dotted
    name: str  # boto3 or botocore
    required: bool  # outside any try or if: without it the import fails


@dataclass(frozen=True)
class SdkUse:
    """The function's own imports of the SDK, and whether the build may provide it."""

    enabled: bool
    imports: tuple[SdkImport, ...] = ()

    def env_key(self) -> bytes | None:
        """What the build environment's content depends on; None when nothing is
        provided (the environment is the one it was before this existed)."""
        if not self.enabled or not self.imports:
            return None
        names = ",".join(sorted({i.name for i in self.imports}))
        return b"provided-sdk:" + names.encode() + b"\n" + SDK_PINS.read_bytes()


@dataclass(frozen=True)
class Provided:
    """What the build environment got from requirements/provided-sdk.txt, and why."""

    because: str  # "the function imports boto3"
    distributions: dict[str, str]  # name -> version, as installed here

    def line(self) -> str:
        adding = ", ".join(f"{n} {self.distributions[n]}" for n in SDK_MODULES if n in self)
        them, need = ("them", "they need") if " and " in self.because else ("it", "it needs")
        return (
            f"build: {self.because} and its requirements do not bring {them}: adding {adding} "
            f"as Lambda's Python runtimes include {them} (requirements/provided-sdk.txt, with "
            f"what {need}; {TOGGLE} turns this off)"
        )

    def __contains__(self, name: object) -> bool:
        return name in self.distributions


# --- who imports it --------------------------------------------------------------


class _Finder(ast.NodeVisitor):
    """Imports of boto3/botocore in one module, each marked required or not."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.guarded = 0  # depth of try bodies and if branches around the node
        self.found: list[SdkImport] = []

    def _note(self, name: str | None) -> None:
        top = (name or "").split(".")[0]
        if top in SDK_MODULES:
            self.found.append(SdkImport(self.module, top, required=self.guarded == 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._note(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0:
            self._note(node.module)

    def _guarded(self, nodes: Iterable[ast.AST]) -> None:
        self.guarded += 1
        for child in nodes:
            self.visit(child)
        self.guarded -= 1

    def visit_Try(self, node: ast.Try) -> None:
        self._guarded(node.body)
        for child in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(child)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        self._guarded((*node.body, *node.orelse))


def imports_in(source: bytes, module: str) -> list[SdkImport]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # SRC's syntax is checked by build/sources.py; a dependency's is not ours
    finder = _Finder(module)
    finder.visit(tree)
    return finder.found


def function_imports(
    src: Path | None, handler_module: str, excludes: Iterable[str]
) -> list[SdkImport]:
    """The SDK imports of the function's own code: every .py of SRC, or, with no SRC,
    the shipped handler's module file (handlers/api.py)."""
    if src is not None:
        files: Iterator[tuple[Path, str]] = walk(src, excludes)
    else:
        relative = handler_module.replace(".", "/") + ".py"
        files = iter([(ROOT / relative, relative)] if (ROOT / relative).is_file() else [])
    found = []
    for path, relative in files:
        if path.suffix == ".py":
            found += imports_in(path.read_bytes(), module_name(relative))
    return found


def scan(src: Path | None, handler_module: str, excludes: Iterable[str], enabled: bool) -> SdkUse:
    return SdkUse(enabled, tuple(function_imports(src, handler_module, excludes)))


# --- what the build environment has ------------------------------------------------


def site_packages(env_root: Path) -> list[Path]:
    return sorted(env_root.glob("lib/python3*/site-packages"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(env_root: Path) -> dict[str, importlib.metadata.Distribution]:
    paths = [str(p) for p in site_packages(env_root)]
    return {
        canonical(d.metadata["Name"] or ""): d for d in importlib.metadata.distributions(path=paths)
    }


# --- providing it ------------------------------------------------------------------


def pinned_blocks(text: str) -> dict[str, str]:
    """Distribution name -> its block of the pins file (the `name==v \\` line and its hashes)."""
    blocks: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            current = canonical(match.group(1))
            blocks[current] = line + "\n"
        elif current and line.startswith(" ") and not line.strip().startswith("#"):
            blocks[current] += line + "\n"
        else:
            current = ""
    return blocks


def pinned_versions() -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", SDK_PINS.read_text(), re.M)
    return {canonical(name): version for name, version in found}


def missing_sdk(env_root: Path, imports: Iterable[SdkImport]) -> list[SdkImport]:
    have = installed(env_root)
    return [i for i in imports if i.name not in have]


def provide(python: Path, env_root: Path, use: SdkUse) -> Provided | None:
    """Called once, when the environment is made, after the requirements are in."""
    if not use.enabled:
        return None
    needed = missing_sdk(env_root, use.imports)
    if not needed:
        return None
    have = installed(env_root)
    blocks = {n: b for n, b in pinned_blocks(SDK_PINS.read_text()).items() if n not in have}
    wanted = env_root / "provided-sdk.txt"
    wanted.write_text("".join(blocks.values()))
    # --no-deps: like /var/runtime, only what is missing; a botocore the requirements
    # brought stays theirs (on Lambda theirs comes first on the path too).
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "-r", str(wanted)],
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BuildError(f"pip could not install {SDK_PINS} (its output is above)")
    versions = pinned_versions()
    names = " and ".join(sorted({i.name for i in needed}))
    provided = Provided(f"the function imports {names}", {n: versions[n] for n in sorted(blocks)})
    (env_root / MARKER).write_text(
        json.dumps({"because": provided.because, "distributions": provided.distributions})
    )
    return provided


def provided_in(env_root: Path) -> Provided | None:
    """What ``provide`` put in this environment, read back (a reused environment, the SBOM)."""
    try:
        raw = json.loads((env_root / MARKER).read_text())
        return Provided(str(raw["because"]), dict(raw["distributions"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_disabled(env_root: Path, use: SdkUse, requirements: Path | None) -> None:
    """PROVIDED_SDK=0: the function's own required import of the SDK fails here, not at init."""
    if use.enabled:
        return
    missing = [i for i in missing_sdk(env_root, use.imports) if i.required]
    if not missing:
        return
    where = (
        f"REQUIREMENTS={requirements}" if requirements else "a requirements file (REQUIREMENTS=)"
    )
    raise BuildError(
        f"module '{missing[0].module}' imports {missing[0].name}, which Lambda's Python runtime "
        f"includes but {TOGGLE} leaves out: add {missing[0].name} to {where}, "
        f"or build without {TOGGLE}"
    )
