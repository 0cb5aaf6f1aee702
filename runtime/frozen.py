"""Start-up work that only the frozen, static bootstrap needs.

The bootstrap brings its own glibc and OpenSSL (Debian's, from the build
machine), whose compiled-in CA path does not exist on Lambda's Amazon Linux,
nor in an empty root. And it unpacks itself into /tmp once (staticx's loader
unpacks the whole program, PyInstaller's onedir tree included); a bootstrap
killed by a timeout leaves that behind, and /tmp is small. Both are handled
here, before the runtime starts.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import MutableMapping

from runtime.config import init_trace_enabled
from runtime.inittrace import InitTrace

# Where CA bundles live: Amazon Linux (Lambda's own OS) first, then Debian and
# friends. When none exists, the bundle frozen into the binary (certifi's) is used.
SYSTEM_CA_BUNDLES = (
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
)

# Extraction directories, as staticx names them. PyInstaller's onedir program
# unpacks nothing: its _MEIPASS is the `_internal/` inside staticx's directory.
EXTRACTION_PREFIXES = ("staticx-",)
# A bootstrap holds an exclusive lock on this file in each of its extraction
# directories for as long as it lives; the kernel drops the lock when the
# process dies, however it dies. A free lock is proof the owner is gone.
ALIVE_LOCK = ".staticlambda-alive"


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
    bundle = environ.get("STATICX_BUNDLE_DIR")
    if bundle:
        own.add(os.path.realpath(bundle))
    return own


def hold_extraction_locks(environ: MutableMapping[str, str]) -> list[int]:
    """Mark our extraction directories as alive; keep the returned fds open."""
    fds = []
    for directory in own_extraction_dirs(environ):
        try:
            fd = os.open(
                os.path.join(directory, ALIVE_LOCK), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # unmarked, it is simply never swept
        fds.append(fd)
    return fds


def sweep_stale_extractions(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the extraction directories of bootstraps that were killed.

    Only directories marked by a bootstrap of ours and whose mark's lock is
    free are removed: a directory still being unpacked, or another program's,
    has no mark and is left alone. Returns what was removed.
    """
    tmp = environ.get("TMPDIR") or "/tmp"
    own = own_extraction_dirs(environ)
    removed = []
    try:
        entries = list(os.scandir(tmp))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(EXTRACTION_PREFIXES):
            continue
        path = os.path.realpath(entry.path)
        if path in own:
            continue
        try:
            fd = os.open(os.path.join(path, ALIVE_LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # not marked (or not ours to read): leave it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its bootstrap is alive
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def run(handler_name: str) -> int:
    """The frozen bootstrap's main: its handler is the one it was built with."""
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(
            f"bootstrap: a Lambda runtime with the handler {handler_name} built in.\n"
            "Lambda runs it as the function's bootstrap; locally, run it under the "
            "Runtime Interface Emulator (make invoke). It reads AWS_LAMBDA_RUNTIME_API; "
            "_HANDLER is ignored."
        )
        return 0
    trace = InitTrace(init_trace_enabled(os.environ))
    trace.mark("bootstrap: CA bundle, sweep of old extractions")
    alive = hold_extraction_locks(os.environ)  # held until the process ends
    configure_ca_bundle(os.environ)
    sweep_stale_extractions(os.environ)
    trace.mark("imports: the runtime, httpx")
    from runtime.__main__ import main

    try:
        return main([handler_name], init_trace=trace)
    finally:
        for fd in alive:
            os.close(fd)
