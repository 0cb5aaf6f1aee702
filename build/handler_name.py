"""HANDLER, checked before anything is frozen or any build environment is made.

Lambda's Python runtime takes `module.function`: a dotted module path (or, as AWS's
runtime also accepts, `dir/module`) and a name in it, at most 128 characters. The
name is pasted into the entry script the build generates (build/freeze.py), so every
part must be a Python identifier: a space, a quote or a newline is refused here.

Forms written for other tools are answered with the one meant, in one line:

    app.py:handler, app:handler    ->  app.handler   (Serverless, gunicorn)
    app/handler                    ->  app.handler
    app.py.handler                 ->  app.handler
    app.py                         ->  app.<function>

Then the module must be where the build looks for it: in SRC, or with no SRC among
this repository's shipped handlers (handlers/*.py). One found in neither is refused
with the closest names there (difflib). With REQUIREMENTS the module may be a
package's: unless its name is close to one of SRC's (a typo), the build environment is
asked once it is made (``check_installed``), still before anything is frozen. A
module found is read (never run) for the function: a name no statement of it binds
is refused, with the closest names, unless the module makes names in ways reading
cannot follow (`import *`, a module `__getattr__`, `globals()`, ...).
"""

from __future__ import annotations

import ast
import difflib
import keyword
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from build.errors import BuildError
from build.paths import DEFAULT_HANDLER, ROOT
from build.sources import module_name, walk

SHIPPED = ROOT / "handlers"  # the handlers a build without SRC can run
MAX_LENGTH = 128  # Lambda's Handler field
# Calls and statements that make module-level names reading cannot list.
DYNAMIC_NAMES = {"globals", "vars", "exec", "setattr", "eval", "__import__"}


@dataclass(frozen=True)
class HandlerName:
    text: str  # as given, and as the runtime is told (it takes `dir/module` too)
    module: str  # dotted
    function: str
    # The module's file (check_handler); None when the build environment must say.
    path: Path | None = None


def is_name(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def meant(handler: str) -> str | None:
    """The `module.function` a mistyped HANDLER most likely meant, or None."""
    text = handler.strip()
    if ":" in text:  # app.py:handler, app:handler, pkg/app.py:handler
        module, _, function = text.rpartition(":")
    elif "." not in text and "/" in text:  # app/handler
        module, _, function = text.rpartition("/")
    elif text.endswith(".py"):  # app.py: the function is not known
        module, function = text[: -len(".py")], "<function>"
    else:
        module, _, function = text.rpartition(".")
        if not module.endswith(".py"):  # app.py.handler
            return None
    module = module.removesuffix(".py").replace("/", ".")
    if not all(is_name(p) for p in module.split(".")):
        return None
    if function != "<function>" and not is_name(function):
        return None
    return f"{module}.{function}"


def parse(handler: str) -> HandlerName:
    """Its form only: no file is read."""
    if len(handler) > MAX_LENGTH:
        raise BuildError(
            f"HANDLER is {len(handler)} characters; Lambda takes at most {MAX_LENGTH}: "
            "give a shorter module.function"
        )
    guess = meant(handler)
    if guess is not None and guess != handler:
        raise BuildError(
            f"HANDLER={handler!r} is not module.function: give HANDLER={guess} "
            "(the module's dotted name, a dot, the function's name)"
        )
    module, dot, function = handler.rpartition(".")
    parts = [*module.replace("/", ".").split("."), function]
    if not dot or not all(is_name(p) for p in parts):
        bad = next((p for p in parts if p and not is_name(p)), None)
        why = f": {bad!r} is not a Python name" if bad is not None else ""
        raise BuildError(
            f"HANDLER={handler!r} is not module.function{why} (for example {DEFAULT_HANDLER})"
        )
    return HandlerName(handler, module.replace("/", "."), function)


def module_file(root: Path, module: str) -> Path | None:
    """root/a/b.py or root/a/b/__init__.py for module a.b, if there."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def modules_in(root: Path) -> list[str]:
    """Every module name the folder provides, dotted, in walking order."""
    return [module_name(rel) for path, rel in walk(root, ()) if path.suffix == ".py"]


def closest(word: str, names: list[str]) -> list[str]:
    """The names most like ``word``: first those of the same package, by their last part
    (`handlers.ap` is near `handlers.api`, not `handlers.echo`), then any, by all of it."""
    parent, _, last = word.rpartition(".")
    siblings = {n.rpartition(".")[2]: n for n in names if n.rpartition(".")[0] == parent}
    near = difflib.get_close_matches(last, list(siblings), n=3, cutoff=0.6)
    return [siblings[n] for n in near] or difflib.get_close_matches(word, names, n=3, cutoff=0.75)


def listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def locate(name: HandlerName, src: Path | None, requirements: Path | None) -> Path | None:
    """The module's file; None when only the build environment can say (REQUIREMENTS)."""
    if src is None:
        found = module_file(ROOT, name.module) if name.module.startswith("handlers.") else None
        if found is not None:
            return found
        shipped = [f"handlers.{m}" for m in modules_in(SHIPPED) if m != "__init__"]
        if requirements is not None and not closest(name.module, shipped):
            return None
        near = closest(name.module, shipped)
        if near:
            raise BuildError(
                f"HANDLER={name.text}: no module '{name.module}' in this repository's "
                f"handlers; closest: {', '.join(near)}: give HANDLER={near[0]}.{name.function}"
            )
        raise BuildError(
            f"HANDLER={name.text}: no module '{name.module}' in this repository's handlers; "
            "give SRC=<your function's folder>"
        )
    found = module_file(src, name.module)
    if found is not None:
        return found
    present = modules_in(src)
    near = closest(name.module, present)
    if requirements is not None and not near:
        return None  # a package of the requirements, maybe: check_installed says
    where = f"SRC={src} has no module '{name.module}' ({name.module.replace('.', '/')}.py)"
    if near:
        raise BuildError(
            f"HANDLER={name.text}: {where}; closest: {', '.join(near)}: "
            f"give HANDLER={near[0]}.{name.function}"
        )
    if present:
        raise BuildError(f"HANDLER={name.text}: {where}; its modules: {listed(present)}")
    raise BuildError(f"HANDLER={name.text}: {where}, nor any Python file: check SRC")


def bound_names(tree: ast.Module) -> set[str] | None:
    """Every name a statement of the module binds, anywhere (generous on purpose);
    None when it makes names in ways reading cannot follow."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__" and node in tree.body:
                return None
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in DYNAMIC_NAMES:
                return None
        elif isinstance(node, ast.Attribute) and node.attr in ("modules", "__dict__"):
            return None  # sys.modules[__name__].x = ..., module.__dict__
    return names


def check_function(name: HandlerName, path: Path) -> None:
    """The function must be a name the module binds (read, never run)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return  # the syntax check (build/sources.py) says it with Lambda's words
    names = bound_names(tree)
    if names is None or name.function in names:
        return
    defined = sorted(
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")
    )
    near = closest(name.function, defined)
    where = (
        f"HANDLER={name.text}: {path.name} of module '{name.module}' defines no '{name.function}'"
    )
    if near:
        raise BuildError(
            f"{where}; closest: {', '.join(near)}: give HANDLER={name.module}.{near[0]}"
        )
    if defined:
        raise BuildError(f"{where}; its functions: {listed(defined)}: give one of them")
    raise BuildError(f"{where}, nor any function: check HANDLER and the module")


def check_handler(handler: str, src: Path | None, requirements: Path | None) -> HandlerName:
    """Form, module and function, from the files alone; the fix in one line. A ``path``
    of None: the module may be a package of REQUIREMENTS (``check_installed``)."""
    name = parse(handler)
    path = locate(name, src, requirements)
    if path is not None:
        check_function(name, path)
    return replace(name, path=path)


def check_installed(name: HandlerName, python: Path, requirements: Path) -> None:
    """A module in neither SRC nor the shipped handlers: the build environment's
    interpreter (REQUIREMENTS installed, nothing run of it) must find it."""
    probe = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)",
            name.module,
        ],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BuildError(
            f"HANDLER={name.text}: module '{name.module}' is neither in SRC nor installed by "
            f"REQUIREMENTS={requirements}: fix HANDLER, or give SRC=<your function's folder>"
        )
