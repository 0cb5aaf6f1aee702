"""staticx's bootloader, patched to stream: built once per machine, for stage 2.

staticx's own loader maps the whole bootstrap to find its archive (those pages
stay resident while it unpacks), copies each file through one malloc() of the
whole file, and says `tar_extract_all() failed: Invalid argument` when /tmp is
full. build/patches/staticx-0.14.2-streaming-loader.patch fixes the three
(measured for the echo bootstrap: the loader's VmHWM 29.5 MB with staticx's own,
0.36 MB with this one; README, "What the binary brings with it"). It is applied
to staticx's sdist, pinned here by version and sha256, and built with Debian's
musl-gcc and scons (~2 s), as staticx's own release builds are; the result is
cached in .cache/loader/ (.cache/arm64/loader/ for arm64) by the patch's and the sdist's hashes.

Nothing cached is used unchecked. The sdist is checked against its pinned sha256 each
time it is read (a cached copy that differs is downloaded again). The loader has no
pinned hash (this machine's musl-gcc compiles it), so the build that compiles it writes
bootloader.json beside it: the sdist's and the patch's sha256 and the loader's own.
Before each use the loader's bytes are read once, checked against that record, and
those very bytes go into the bootstrap; a loader that differs (tampered, damaged, half
written) is said in one line and built again. Both files and their folder must be this
user's and writable by no other user: in a cache others can write to, the record would
prove nothing. (Who can write files as you can rewrite both, as they could this
repository: restore .cache only from a source you trust, e.g. not from another branch's CI
cache.)

Without musl-gcc or scons, and without root to install them, or without the
sdist (offline), the build goes on with staticx's stock loader and says so in
one line: the bootstrap works the same, with the stock loader's memory peak and
its full-/tmp message. STATICLAMBDA_STOCK_LOADER=1 asks for the stock loader.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from build import paths
from build.atomic import PROGRAM_MODE, replace_file
from build.errors import BuildError
from build.package import file_sha256
from build.paths import ROOT

STATICX_VERSION = "0.14.2"  # the same as requirements/build.in pins
STATICX_SDIST = f"staticx-{STATICX_VERSION}.tar.gz"
STATICX_SDIST_SHA256 = "bf7d5d35d5777a72b2d4c408eb25f9c61049b28b94a388a012122dba00fffa93"
PATCH = ROOT / "build" / "patches" / f"staticx-{STATICX_VERSION}-streaming-loader.patch"
# The build cache of this machine's architecture (build/paths.py): an arm64 build
# root compiles an aarch64 loader from the same patch and sdist, so same key.
CACHE = paths.CACHE / "loader"
LOADER = "bootloader"
# Beside it, written by the build that compiled it: the sdist's and the patch's sha256 it
# was built from and its own, checked before each use (the loader has no pinned hash:
# it is compiled here, by this machine's musl-gcc).
MANIFEST = "bootloader.json"
# What the build needs, and the Debian packages that carry it.
TOOLS = {"musl-gcc": "musl-tools", "scons": "scons", "patch": "patch"}
STOCK_VARIABLE = "STATICLAMBDA_STOCK_LOADER"
STOCK_COST = (
    "staticx's stock loader maps the whole file and copies each file whole "
    "(a higher memory peak at each cold start), and a full /tmp gives "
    "'tar_extract_all() failed: Invalid argument'"
)


class LoaderSkipped(Exception):
    """The patched loader cannot be built here; the message says why and the fix."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def install_tools(missing: list[str]) -> None:
    """apt-get the packages of the missing tools when root; else say what to run."""
    packages = sorted({TOOLS[tool] for tool in missing})
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise LoaderSkipped(
            f"{', '.join(missing)} missing (as root: {' '.join(command[:2])} {' '.join(packages)})"
        )
    print(f"    loader: installing {' '.join(packages)} (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # a fresh machine's package lists may be empty
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or missing_tools():
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LoaderSkipped(f"apt-get could not install {' '.join(packages)}: {said}")


def read_own_file(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (not a link) of this user that no other user may
    write: what another user could have put in a shared cache is not read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise PermissionError(f"{path} is not a file only this user may write")
        return f.read()


def own_folder(path: Path) -> None:
    """Raises unless ``path`` is a folder (not a link) of this user no other user may write:
    in a shared cache, another user could otherwise swap the files inside."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise PermissionError(f"{path} is not a folder only this user may write")


def pip_download(folder: Path) -> subprocess.CompletedProcess[str]:
    """`pip download` of the pinned sdist into ``folder``, its hash checked by pip too."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pin:
        pin.write(f"staticx=={STATICX_VERSION} --hash=sha256:{STATICX_SDIST_SHA256}\n")
    try:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--require-hashes",
                "-r",
                pin.name,
                "-d",
                str(folder),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(pin.name)


def fetch_sdist(folder: Path) -> bytes:
    """staticx's sdist, checked against the pinned sha256 each time it is used: from the
    cache when the cached copy has that hash, else downloaded again (and cached)."""
    cached = folder / STATICX_SDIST
    try:
        data = read_own_file(cached)
    except OSError:
        data = None
    if data is not None and hashlib.sha256(data).hexdigest() == STATICX_SDIST_SHA256:
        return data
    if data is not None:
        print(f"    loader: the cached {STATICX_SDIST} is not the pinned one; downloading it")
    with tempfile.TemporaryDirectory(prefix="staticx-sdist-") as tmp:
        done = pip_download(Path(tmp))
        downloaded = Path(tmp) / STATICX_SDIST
        if done.returncode != 0 or not downloaded.is_file():
            said = [line for line in done.stderr.splitlines() if "Location" not in line]
            raise LoaderSkipped(f"pip could not download {STATICX_SDIST}: {(said or ['?'])[-1]}")
        data = downloaded.read_bytes()
    if hashlib.sha256(data).hexdigest() != STATICX_SDIST_SHA256:
        raise BuildError(f"{STATICX_SDIST} does not have the pinned sha256; refusing it")
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(cached, data)
    return data


def compile_loader(sdist: bytes, output: Path) -> None:
    """Unpack the sdist, apply the patch, build the release bootloader."""
    with tempfile.TemporaryDirectory(prefix="staticx-loader-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(sdist)) as archive:
            archive.extractall(tmp)  # these very bytes were hash-checked: trusted
        source = Path(tmp) / f"staticx-{STATICX_VERSION}"
        steps = [
            ["patch", "-p1", "--batch", "--forward", "-i", str(PATCH)],
            [
                "scons",
                "-Q",
                f"STATICX_VERSION={STATICX_VERSION}+staticlambda",
                "staticx/assets/release/bootloader",
            ],
        ]
        env = {**os.environ, "BOOTLOADER_CC": "musl-gcc", "SOURCE_DATE_EPOCH": "0"}
        for step in steps:
            done = subprocess.run(
                step, cwd=source, env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                said = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
                raise BuildError(f"building staticx's loader: {step[0]} failed: {said[-1]}")
        built = source / "staticx" / "assets" / "release" / "bootloader"
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, output)


class StaleLoader(Exception):
    """The cached loader cannot be used as it is; the message says why."""


def cached_loader(folder: Path, inputs: dict[str, str]) -> bytes:
    """The cached loader's bytes, once checked against the manifest its build wrote beside
    it; raises StaleLoader (an empty message when there is simply none yet)."""
    loader, manifest = folder / LOADER, folder / MANIFEST
    if not loader.exists() and not manifest.exists():
        raise StaleLoader("")
    if not manifest.exists():
        raise StaleLoader(f"{loader} has no record of its build ({MANIFEST})")
    try:
        own_folder(folder)
        recorded = json.loads(read_own_file(manifest))
        data = read_own_file(loader)
    except (OSError, ValueError) as e:
        raise StaleLoader(f"the cached loader cannot be trusted: {e}") from None
    if not isinstance(recorded, dict) or {k: recorded.get(k) for k in inputs} != inputs:
        raise StaleLoader(f"{manifest} does not record a build of this sdist and patch")
    if hashlib.sha256(data).hexdigest() != recorded.get("bootloader_sha256"):
        raise StaleLoader(
            f"{loader} does not have the sha256 recorded when it was built (changed since)"
        )
    return data


def build_loader(sdist: bytes, folder: Path, inputs: dict[str, str]) -> bytes:
    """Compile the loader, cache it with its manifest (written last: a build that stops
    half-way leaves no manifest, so nothing is trusted), return its bytes."""
    with tempfile.TemporaryDirectory(prefix="staticx-loader-out-") as tmp:
        compile_loader(sdist, Path(tmp) / LOADER)
        data = (Path(tmp) / LOADER).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # whatever the umask: own_folder() refuses a group-writable one
    (folder / MANIFEST).unlink(missing_ok=True)
    replace_file(folder / LOADER, data, PROGRAM_MODE)
    manifest = {**inputs, "bootloader_sha256": hashlib.sha256(data).hexdigest()}
    replace_file(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return data


def patched_loader() -> bytes | None:
    """The patched loader's bytes, checked before this use; None (after one line saying
    why) for staticx's own."""
    if os.environ.get(STOCK_VARIABLE):
        print(f"    loader: staticx's stock loader ({STOCK_VARIABLE} is set)")
        return None
    inputs = {"staticx_sdist_sha256": STATICX_SDIST_SHA256, "patch_sha256": file_sha256(PATCH)}
    key = hashlib.sha256(f"{STATICX_SDIST_SHA256} {inputs['patch_sha256']}".encode())
    folder = CACHE / key.hexdigest()[:16]
    try:
        return cached_loader(folder, inputs)
    except StaleLoader as e:
        if str(e):
            print(f"    loader: {e}; building it again", flush=True)
    try:
        missing = missing_tools()
        if missing:
            install_tools(missing)
        sdist = fetch_sdist(CACHE / "sdist")
    except LoaderSkipped as e:
        print(f"    loader: skipped the streaming loader: {e}; {STOCK_COST}", flush=True)
        return None
    data = build_loader(sdist, folder, inputs)
    print(f"    loader: built staticx {STATICX_VERSION}'s loader with {PATCH.name}")
    return data
