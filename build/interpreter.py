"""Choose the Python interpreter the build environment is made from.

staticx refuses any bundled library that carries RPATH or RUNPATH, and the
CPython builds of python.org, pyenv and many version managers put RUNPATH on
libpython. PyInstaller also needs a shared libpython. So the first candidate
with a shared libpython and no RUNPATH wins, and the choice is explained.

Runs with only the standard library, before any virtual environment exists:
    python3 build/interpreter.py     -> prints the chosen interpreter's path
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PROBE = (
    "import sys, sysconfig, os;"
    "d = sysconfig.get_config_var('LIBDIR') or '';"
    "n = sysconfig.get_config_var('INSTSONAME') or '';"
    "s = sysconfig.get_config_var('Py_ENABLE_SHARED');"
    "import venv, ensurepip;"
    "print(sys.version_info[0], sys.version_info[1], s, os.path.join(d, n))"
)


def candidates(environ: dict[str, str]) -> list[str]:
    chosen = environ.get("STATICLAMBDA_PYTHON")
    if chosen:
        return [chosen]  # the user's explicit choice is checked, never replaced
    # The python3 the user would run comes first; the distribution's is the
    # usual fallback, as distributions build CPython without RUNPATH.
    found = [shutil.which("python3") or "", "/usr/bin/python3", "/usr/local/bin/python3"]
    seen: list[str] = []
    for path in found:
        if (
            path
            and os.path.exists(path)
            and os.path.realpath(path) not in map(os.path.realpath, seen)
        ):
            seen.append(path)
    return seen


def has_runpath(path: str) -> bool:
    out = subprocess.run(
        ["readelf", "-d", path], capture_output=True, text=True, check=False
    ).stdout
    return "(RUNPATH)" in out or "(RPATH)" in out


def why_unsuitable(python: str) -> str | None:
    """None when ``python`` can be frozen and made static; else the reason."""
    try:
        probe = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError as e:
        return f"cannot run it ({e.strerror})"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"it lacks venv or ensurepip ({last}; on Debian: apt-get install python3-venv)"
    major, minor, shared, libpython = probe.stdout.split()
    if (int(major), int(minor)) < (3, 9):
        return f"it is Python {major}.{minor}; 3.9 or newer is needed"
    if shared != "1" or not os.path.exists(libpython):
        return "it has no shared libpython, which PyInstaller needs"
    if has_runpath(libpython):
        return f"{libpython} carries RUNPATH, which staticx refuses"
    if has_runpath(os.path.realpath(python)):
        return "the interpreter carries RUNPATH, which staticx refuses"
    return None


def choose(environ: dict[str, str]) -> str:
    skipped: list[str] = []
    for python in candidates(environ):
        reason = why_unsuitable(python)
        if reason is None:
            if skipped:
                print(
                    f"build: using {python}; skipped " + "; ".join(skipped),
                    file=sys.stderr,
                )
            return python
        skipped.append(f"{python}: {reason}")
    raise SystemExit(
        "build: no Python interpreter can be made static here ("
        + "; ".join(skipped or ["none found"])
        + "). Install your distribution's python3 with venv (Debian: apt-get install "
        "python3-venv), or point STATICLAMBDA_PYTHON at a CPython built with "
        "--enable-shared and without RPATH."
    )


if __name__ == "__main__":
    print(choose(dict(os.environ)))
