"""Stage 4, package: `function.zip` with `bootstrap` at its root, mode 0755,
fixed timestamp, so the same bootstrap always gives the same zip, and the
sha256 beside it (hex in the file, base64 as Lambda reports CodeSha256)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from build.atomic import replace_file, replacing

# The earliest date a zip entry can hold: nothing of the build machine's clock leaks in.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# A regular file, rwxr-xr-x, in the zip's Unix attributes (as Go's build-lambda-zip).
BOOTSTRAP_ATTR = 0o100755 << 16


def write_zip(bootstrap: Path, zip_path: Path) -> Path:
    info = zipfile.ZipInfo("bootstrap", date_time=FIXED_DATE)
    info.external_attr = BOOTSTRAP_ATTR
    info.create_system = 3  # Unix, so the mode above is read
    info.compress_type = zipfile.ZIP_DEFLATED
    with replacing(zip_path) as tmp, zipfile.ZipFile(tmp, "w") as z:
        z.writestr(info, bootstrap.read_bytes(), compresslevel=9)
    return zip_path


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read a MiB at a time (a bootstrap is ~75 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_sha256(data: bytes) -> str:
    """What Lambda reports as CodeSha256: base64 of the zip's sha256 (deploy compares the
    bytes it uploads, so this takes bytes, not a path)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def write_sha256_file(path: Path) -> Path:
    out = path.with_name(path.name + ".sha256")
    return replace_file(out, f"{file_sha256(path)}  {path.name}\n")
