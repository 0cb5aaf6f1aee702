"""The build machine's package that installed a bundled library (dpkg on Debian, rpm on
Amazon Linux): found by the file's bytes, so a library is named only if it is that
package's very file, and with the distribution it belongs to (/etc/os-release)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Owner:
    """The OS package a bundled library came from."""

    manager: str  # deb or rpm: the purl type
    name: str
    version: str
    source: str | None
    arch: str | None


def library_dirs() -> list[Path]:
    """Where the build machine keeps shared libraries, each directory once."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [sysconfig.get_config_var("LIBDIR") or ""]
    for base in ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/opt"):
        dirs += [f"{base}/{multiarch}", base]
    seen, out = set(), []
    for d in dirs:
        path = Path(d)
        if d and path.is_dir() and path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def host_file(name: str, data: bytes, dirs: list[Path]) -> Path | None:
    """The build machine's file with these exact bytes, under the name it was bundled as."""
    digest = hashlib.sha256(data).digest()
    base = Path(name).name
    for d in dirs:
        for candidate in [d / base, *d.glob(f"*/lib*/{base}")] if d.name == "opt" else [d / base]:
            try:
                if hashlib.sha256(candidate.read_bytes()).digest() == digest:
                    return candidate
            except OSError:
                continue
    return None


def path_aliases(path: Path) -> list[str]:
    """The names a package manager may know a file by: with /lib a link to /usr/lib
    (merged /usr), dpkg still records many libraries under /lib."""
    names = [str(path), os.path.realpath(path)]
    for name in list(names):
        if name.startswith("/usr/lib/"):
            names.append(name.removeprefix("/usr"))
        elif name.startswith("/lib/"):
            names.append("/usr" + name)
    return list(dict.fromkeys(names))


def owner_of(path: Path) -> Owner | None:
    for candidate in path_aliases(path):
        if shutil.which("dpkg-query"):
            found = run(["dpkg-query", "-S", candidate])
            if found:
                package = found.split(":", 1)[0].strip()
                fields = run(
                    ["dpkg-query", "-W", "-f=${Version}\t${source:Package}\t${Architecture}",
                     package]
                )  # fmt: skip
                if fields:
                    version, source, arch = [*fields.split("\t"), "", ""][:3]
                    return Owner("deb", package.split(":")[0], version, source or None, arch)
        if shutil.which("rpm"):
            found = run(
                ["rpm", "-qf", candidate, "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"]
            )
            if found and "\t" in found:
                name, version, arch = found.splitlines()[0].split("\t")
                return Owner("rpm", name, version, None, arch)
    return None


def run(command: list[str]) -> str | None:
    """The command's output, or None if it failed or said nothing (a file no package owns)."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def os_release() -> dict[str, str]:
    """/etc/os-release as a mapping: its ID and VERSION_ID name the purl's distro."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    return dict(
        (k, v.strip('"')) for k, _, v in (line.partition("=") for line in text.splitlines()) if v
    )
