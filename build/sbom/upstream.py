"""glibc's and OpenSSL's own release, read from the version string each library carries.

A distribution's package version (Debian 12's libc6 2.36-9+deb12u14) is not what NVD's CPEs
name; the upstream release (glibc 2.36) is, so these libraries also get a CPE with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Upstream:
    """A project whose libraries say their own release in a version string."""

    project: str
    files: re.Pattern[str]
    version: re.Pattern[bytes]
    cpe: str  # with {} for the version


UPSTREAM = (
    Upstream(
        "glibc",
        re.compile(r"^libc\.so\.6$"),
        re.compile(rb"GNU C Library \([^)]*\) [a-z ]*version (\d+\.\d+)"),
        "cpe:2.3:a:gnu:glibc:{}:*:*:*:*:*:*:*",
    ),
    Upstream(
        "openssl",
        re.compile(r"^lib(crypto|ssl)\.so"),
        re.compile(rb"OpenSSL (\d+\.\d+\.\d+[a-z]?) +\d+ \w+ \d{4}"),
        "cpe:2.3:a:openssl:openssl:{}:*:*:*:*:*:*:*",
    ),
)


def upstream_version(name: str, data: bytes) -> tuple[str, str, str] | None:
    """(project, version, CPE) from the version string a library carries, if known."""
    for upstream in UPSTREAM:
        if upstream.files.match(Path(name).name):
            match = upstream.version.search(data)
            if match:
                version = match.group(1).decode()
                return upstream.project, version, upstream.cpe.format(version)
    return None
