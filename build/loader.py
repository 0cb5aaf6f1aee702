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

Without musl-gcc or scons, and without root to install them, or without the
sdist (offline), the build goes on with staticx's stock loader and says so in
one line: the bootstrap works the same, with the stock loader's memory peak and
its full-/tmp message. STATICLAMBDA_STOCK_LOADER=1 asks for the stock loader.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from build import paths
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


def fetch_sdist(folder: Path) -> Path:
    """staticx's sdist, by pip, checked against the pinned sha256."""
    sdist = folder / STATICX_SDIST
    if sdist.is_file() and file_sha256(sdist) == STATICX_SDIST_SHA256:
        return sdist
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pin:
        pin.write(f"staticx=={STATICX_VERSION} --hash=sha256:{STATICX_SDIST_SHA256}\n")
    try:
        done = subprocess.run(
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
    if done.returncode != 0 or not sdist.is_file():
        said = [line for line in done.stderr.splitlines() if "Location" not in line]
        raise LoaderSkipped(f"pip could not download {STATICX_SDIST}: {(said or ['?'])[-1]}")
    if file_sha256(sdist) != STATICX_SDIST_SHA256:
        sdist.unlink()
        raise BuildError(f"{STATICX_SDIST} does not have the pinned sha256; refusing it")
    return sdist


def compile_loader(sdist: Path, output: Path) -> None:
    """Unpack the sdist, apply the patch, build the release bootloader."""
    with tempfile.TemporaryDirectory(prefix="staticx-loader-") as tmp:
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp)  # the sdist is hash-checked: trusted
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
        output.chmod(0o755)


def patched_loader() -> Path | None:
    """The patched loader's path; None (after one line saying why) for staticx's own."""
    if os.environ.get(STOCK_VARIABLE):
        print(f"    loader: staticx's stock loader ({STOCK_VARIABLE} is set)")
        return None
    key = hashlib.sha256(f"{STATICX_SDIST_SHA256} {file_sha256(PATCH)}".encode()).hexdigest()[:16]
    loader = CACHE / key / "bootloader"
    if loader.is_file():
        return loader
    try:
        missing = missing_tools()
        if missing:
            install_tools(missing)
        sdist = fetch_sdist(CACHE / "sdist")
    except LoaderSkipped as e:
        print(f"    loader: skipped the streaming loader: {e}; {STOCK_COST}", flush=True)
        return None
    compile_loader(sdist, loader)
    print(f"    loader: built staticx {STATICX_VERSION}'s loader with {PATCH.name}")
    return loader
