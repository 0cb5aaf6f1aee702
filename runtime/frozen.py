"""Start-up work that only the frozen, static bootstrap needs.

The bootstrap brings its own glibc and OpenSSL (Debian's, from the build
machine), whose compiled-in CA path does not exist on Lambda's Amazon Linux,
nor in an empty root. And it unpacks itself into /tmp twice (staticx, then
PyInstaller); a bootstrap killed by a timeout leaves both behind, and /tmp is
small. Both are handled here, before the runtime starts.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path

# Where CA bundles live: Amazon Linux (Lambda's own OS) first, then Debian and
# friends. When none exists, the bundle frozen into the binary (certifi's) is used.
SYSTEM_CA_BUNDLES = (
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
)

# Extraction directories, as staticx and PyInstaller name them.
EXTRACTION_PREFIXES = ("staticx-", "_MEI")
# A directory younger than this may belong to a bootstrap that is still unpacking.
STALE_AFTER_SECONDS = 10.0


def configure_ca_bundle(environ: MutableMapping[str, str]) -> None:
    """Point OpenSSL (and so ssl.create_default_context, httpx, urllib) at a CA
    bundle that exists, unless the user chose one."""
    if environ.get("SSL_CERT_FILE") or environ.get("SSL_CERT_DIR"):
        return
    for path in SYSTEM_CA_BUNDLES:
        if os.path.isfile(path):
            environ["SSL_CERT_FILE"] = path
            return
    try:
        import certifi
    except ImportError:  # a handler's build without certifi: nothing better to offer
        return
    environ["SSL_CERT_FILE"] = certifi.where()


def own_extraction_dirs(environ: MutableMapping[str, str]) -> set[str]:
    own = set()
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        own.add(os.path.realpath(meipass))
    bundle = environ.get("STATICX_BUNDLE_DIR")
    if bundle:
        own.add(os.path.realpath(bundle))
    return own


def sweep_stale_extractions(environ: MutableMapping[str, str], now: float | None = None) -> list[str]:
    """Remove extraction directories left by bootstraps that were killed.

    A directory is stale when no process maps or holds open anything in it and
    it is not freshly made; an unreadable /proc entry counts as "in use", so the
    sweep only ever removes what it can prove is dead. Returns what it removed.
    """
    tmp = Path(environ.get("TMPDIR") or "/tmp")
    own = own_extraction_dirs(environ)
    now = time.time() if now is None else now
    candidates = []
    try:
        entries = list(os.scandir(tmp))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(EXTRACTION_PREFIXES):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != os.getuid():
                continue
            if now - entry.stat().st_mtime < STALE_AFTER_SECONDS:
                continue
        except OSError:
            continue
        path = os.path.realpath(entry.path)
        if path not in own:
            candidates.append(path)
    if not candidates:
        return []
    in_use = dirs_in_use(candidates)
    removed = []
    for path in candidates:
        if path not in in_use:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def dirs_in_use(dirs: list[str]) -> set[str]:
    """Which of ``dirs`` some live process maps a file from or holds open.

    Only our own user's processes are looked at: the directories are ours and
    mode 0700, so no other unprivileged user can be using them (on Lambda the
    init process is another user, and its /proc entries are closed to us).
    """
    uid = os.getuid()
    prefixes = [d.rstrip("/") + "/" for d in dirs]
    used: set[str] = set()

    def mark(target: str) -> None:
        for d, prefix in zip(dirs, prefixes):
            if target.startswith(prefix) or target == d:
                used.add(d)

    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        proc = f"/proc/{pid}"
        try:
            if uid != 0 and os.stat(proc).st_uid != uid:
                continue
            with open(f"{proc}/maps") as maps:
                for line in maps:
                    mark(line.rstrip("\n").split(" ", 5)[-1].strip())
            for link in ("exe", "cwd"):
                mark(os.readlink(f"{proc}/{link}"))
            for fd in os.listdir(f"{proc}/fd"):
                mark(os.readlink(f"{proc}/fd/{fd}"))
        except FileNotFoundError:
            continue  # the process ended while we looked
        except OSError:
            return set(dirs)  # cannot see every process: remove nothing
    return used


def run(handler_name: str) -> int:
    """The frozen bootstrap's main: its handler is the one it was built with."""
    configure_ca_bundle(os.environ)
    sweep_stale_extractions(os.environ)
    from runtime.__main__ import main

    return main([handler_name])
