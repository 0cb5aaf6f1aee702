"""The function's own `.py` files as files in the bundle's tree, imported from
there: run from build/bootstrap.spec, after the Analysis.

On AWS's Python runtime the function's modules are files in /var/task: their
`__file__` and code carry `/var/task/app.py`, a traceback shows that path and
the source line, `inspect.getsource` works, and code that lists or reads its
own sources finds them (Powertools' `configure_openapi_merge` globs for
`handler.py` files, parses them and loads them by path). PyInstaller freezes
modules into its PYZ archive instead, compiled with a file name relative to
the tree (`app.py`) and without their source.

So each `.py` file of SRC (already in the tree's data, build/sources.py) is
left out of the PYZ and imported from its file: PyInstaller's finder passes a
module its archive does not hold to Python's own, which finds it on
`sys._MEIPASS` (on `sys.path`) like any installed module, and names its code
by its real path. Its bytecode ships beside it in `__pycache__/`, compiled here
as an unchecked-hash `.pyc`, so a cold start neither compiles the source nor
checks it (the tree never changes). A module that EXCLUDE kept out of the tree
stays in the PYZ.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
from typing import Any

from build.sources import SOURCE_SUFFIX


def bytecode_name(dest: str, optimize: int) -> str:
    """`pkg/mod.py` -> `pkg/__pycache__/mod.cpython-311.pyc`, as the frozen
    interpreter (this one) looks for it."""
    return importlib.util.cache_from_source(dest, optimization=optimize or "")


def module_file(name: str, path: str) -> str:
    """Where the module ``name`` must lie in the tree to be imported from there:
    `pkg.mod` -> `pkg/mod.py`, the package `pkg` -> `pkg/__init__.py`."""
    base = name.replace(".", "/")
    return f"{base}/__init__.py" if os.path.basename(path) == "__init__.py" else f"{base}.py"


def ship_sources(analysis: Any, workpath: str) -> list[str]:
    """Drops from the PYZ the modules whose source is a `.py` file in the
    tree's data, at the module's own path, and adds the bytecode of every `.py`
    file there; returns the module names dropped."""
    # The level PyInstaller compiled the PYZ at, which the frozen interpreter runs with.
    optimize = int(analysis.optimize)
    shipped = {
        (os.path.realpath(source), dest.replace(os.sep, "/"))
        for dest, source, _ in analysis.datas
        if dest.endswith(SOURCE_SUFFIX)
    }
    for source, dest in sorted(shipped):
        pyc_dest = bytecode_name(dest, optimize)
        pyc = os.path.join(workpath, "source-bytecode", pyc_dest)
        try:
            py_compile.compile(
                source,
                cfile=pyc,
                dfile=dest,
                doraise=True,
                optimize=optimize,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            # Not SRC's (whose every source compiled before the freeze): a file
            # ADD_DATA brought that is not Python 3. It is a file, not a module.
            continue
        analysis.datas.append((pyc_dest, pyc, "DATA"))
    dropped = {
        name
        for name, path, _ in analysis.pure
        if path and (os.path.realpath(path), module_file(name, path)) in shipped
    }
    analysis.pure = [entry for entry in analysis.pure if entry[0] not in dropped]
    return sorted(dropped)
