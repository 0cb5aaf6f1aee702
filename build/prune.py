"""Leave out of the bundle what neither the handler nor the runtime uses.

PyInstaller collects everything the entry could import. The runtime's own
dependencies reach much more than serving events ever imports: httpcore tries
`import anyio` (and anyio brings asyncio) only to offer async, which this sync
runtime never uses; PyInstaller then also runs multiprocessing's and pkgutil's
start-up hooks at every cold start. So the bundle keeps:

  - every module the handler's module can reach (PyInstaller's import graph),
  - every module the runtime really imports while serving events, measured by
    build/runtime_imports.py, less the async extras the runtime never calls,

and drops the rest with the start-up hooks that only the dropped modules
asked for. A handler that imports asyncio or anyio itself keeps them.
Run from build/bootstrap.spec, on PyInstaller's Analysis.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

# Imported by httpcore only on the chance the program is async; never used by
# the runtime's synchronous client.
ASYNC_EXTRAS = ("anyio", "sniffio", "trio")


def top_level(name: str) -> str:
    return name.split(".", 1)[0]


def reachable(graph: Any, roots: Iterable[str]) -> set[str]:
    """Names of the modules reachable from ``roots`` in PyInstaller's graph."""
    seen: set[str] = set()
    stack = [node for node in (graph.find_node(root) for root in roots) if node is not None]
    while stack:
        node = stack.pop()
        if node.identifier in seen:
            continue
        seen.add(node.identifier)
        stack.extend(graph.outgoing(node))
    return seen


def runtime_keep(measured: Iterable[str]) -> set[str]:
    return {name for name in measured if top_level(name) not in ASYNC_EXTRAS}


def rthook_modules(graph: Any) -> dict[str, set[str]]:
    """Run-time hook script name -> the modules whose presence brings it in."""
    owners: dict[str, set[str]] = {}
    for module, hook_paths in graph._available_rthooks.items():
        for path in hook_paths:
            owners.setdefault(os.path.splitext(os.path.basename(path))[0], set()).add(module)
    return owners


def extension_module(dest_name: str) -> str:
    """`python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so` -> `_asyncio`."""
    return os.path.basename(dest_name).split(".", 1)[0]


def prune(analysis: Any, entry: str, handler_module: str, measured: Iterable[str]) -> list[str]:
    """Drop unused modules from ``analysis`` in place; returns their names.

    ``entry`` is the program's script: what it reaches is what this prunes.
    """
    graph = analysis.graph
    keep = reachable(graph, [handler_module]) | runtime_keep(measured)
    # A start-up hook runs when any module that asked for it stays; what the
    # hook itself imports (inspect's imports zipfile) must then stay too.
    hooks = rthook_modules(graph)
    scripts = [
        entry for entry in analysis.scripts if entry[0] not in hooks or hooks[entry[0]] & keep
    ]
    entry_path = os.path.abspath(entry)
    for _, path, _ in scripts:
        if os.path.abspath(path) != entry_path:  # PyInstaller's own boot script, the hooks
            keep |= reachable(graph, [path])
    dropped = sorted(name for name, _, _ in analysis.pure if name not in keep)
    gone = set(dropped)
    analysis.pure = [entry for entry in analysis.pure if entry[0] not in gone]
    extensions = {
        extension_module(dest)
        for dest, _, kind in analysis.binaries
        if kind == "EXTENSION" and "lib-dynload" in dest
    }
    unused_extensions = {name for name in extensions if name not in keep}
    analysis.binaries = [
        entry
        for entry in analysis.binaries
        if not (entry[2] == "EXTENSION" and extension_module(entry[0]) in unused_extensions)
    ]
    analysis.scripts = scripts
    return dropped + sorted(unused_extensions)
