"""Imports of the user's code that nothing bundled provides, read from
PyInstaller's own warnings file.

The init check (build/initcheck.py) catches what the handler's module imports
at init, with Lambda's own message. It cannot see a module of the user's that
is imported later (inside the handler) and imports a package the requirements
do not bring; PyInstaller has already listed it, in `warn-bootstrap.txt`:

    missing module named yaml - imported by pkg.later (top-level)
    missing module named ujson - imported by pkg.later (optional)

A missing module imported by the user's own code at its top level, or inside a
function (delayed), stops the build. Imports PyInstaller marks optional (in a
try) or conditional (under an if, as `if TYPE_CHECKING:`) are the user's way
of saying "maybe", and are left alone. Only a missing top-level package
counts: `from pydantic import BaseModel` lists `pydantic.BaseModel` as missing
(PyInstaller tries a submodule first, and pydantic's names are lazy), while
pydantic itself is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

LINE = re.compile(r"^missing module named (?P<name>\S+) - imported by (?P<importers>.*)$")
IMPORTER = re.compile(r"(?P<module>[\w.]+) \((?P<kinds>[^)]*)\)")
FORGIVING = {"optional", "conditional"}


def warnings_file(workdir: Path) -> Path | None:
    found = sorted(workdir.glob("work/*/warn-*.txt"))
    return found[0] if found else None


def unresolved_imports(warnings: str, user_modules: Iterable[str]) -> list[tuple[str, str]]:
    """(missing module, importing user module) for each import that will fail."""
    tops = set(user_modules)
    lines = [m for m in map(LINE.match, (line.strip() for line in warnings.splitlines())) if m]
    missing = {m.group("name").strip("'\"") for m in lines}
    found = []
    for match in lines:
        name = match.group("name").strip("'\"")
        if name.split(".")[0] not in missing:
            continue  # a name inside a package that is there
        for importer in IMPORTER.finditer(match.group("importers")):
            module = importer.group("module")
            kinds = {k.strip() for k in importer.group("kinds").split(",")}
            if module.split(".")[0] in tops and not kinds & FORGIVING:
                found.append((name, module))
    return found
