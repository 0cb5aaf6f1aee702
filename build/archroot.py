"""A build root of another architecture: `make build ARCH=arm64` on an x86_64 machine.

PyInstaller freezes the interpreter it runs in, and staticx bundles that
interpreter's own shared libraries, so an aarch64 bootstrap needs an aarch64
Python, its libraries and an aarch64 staticx. Without an arm64 machine, Debian
gives all three: debootstrap makes an arm64 Debian root (the suite and mirror
this machine's apt already uses), qemu-user-static runs its binaries through the
kernel's binfmt_misc, and the repository's own `python -m build.pipeline build`
runs inside it, chrooted, with the repository bind-mounted at its own path. So
the build environment, the patched loader, the verify stage and the init check
(the bootstrap started once, emulated) are the same code as on x86_64, run by
an arm64 Python.

The root is made once and kept outside the work tree, in
$STATICLAMBDA_CACHE/roots/ (default /var/cache/staticlambda/roots/), named by a
hash of its recipe (suite, architecture, packages), so every clone and CI run on
the same machine reuses it. Its stages, each printed with its time:

  1. debootstrap --variant=minbase with Python, binutils, file and what staticx's
     sdist needs to build (there is no aarch64 staticx wheel): gcc, musl-tools,
     scons, zlib1g-dev. About 6 minutes under emulation, ~500 MB.
  2. this machine's CA bundle, pip configuration and resolv.conf copied in, on
     every run: pip inside must reach the index exactly as pip outside does.
The pipeline itself runs in the root with the Python of the build environment
it would make for a function without requirements (build/buildenv.py: the
build pins, by hash, in the repository's .cache/arm64/envs/), so that
environment is made once and serves both. It is made from requirements/build.txt
with --require-hashes, the same pins as on x86_64; staticx comes from its sdist,
checked by its pinned hash, built in about 2.5 minutes under qemu. pip cannot
reuse that wheel for another environment (staticx tags it manylinux1_aarch64,
a tag no aarch64 pip accepts), so a function with requirements, whose
environment is its own, builds staticx once more, once.

Mounts are made in a mount namespace of their own (unshare --mount), so they
end with the build, however it ends. It all needs root (chroot, mount); every
missing prerequisite stops the build with one line that says what to do.

    python -m build.archroot --enter ROOT CWD -- COMMAND...   (run by unshare; internal)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from build.elf import host_architecture
from build.errors import BuildError
from build.paths import ROOT

SUITE = "bookworm"
PACKAGES = (
    "python3",
    "python3-venv",
    "python3-pip",
    "libpython3.11",  # PyInstaller bundles the shared libpython; python3 alone lacks it
    "binutils",
    "file",
    "ca-certificates",
    "gcc",
    "libc6-dev",
    "musl-tools",
    "scons",
    "zlib1g-dev",
    "patch",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_ARCH = {"arm64": "arm64", "x86_64": "amd64"}
BINFMT_NAME = {"arm64": "qemu-aarch64", "x86_64": "qemu-x86_64"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
DONE = ".staticlambda"  # the root's own folder of stage stamps
# What a process in the root sees of this machine's environment: the rest of it
# (VIRTUAL_ENV, PATH of .venv, ...) names things that are not in the root.
PASSED_ENV = re.compile(r"^(PIP_.*|PYTHONHASHSEED|SOURCE_DATE_EPOCH|TERM|LANG|LC_.*|TZ)$")
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def say(text: str) -> None:
    print(text, flush=True)


def cache_home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("STATICLAMBDA_CACHE") or "/var/cache/staticlambda")


def apt_mirror(sources: Iterable[Path]) -> str:
    """The Debian mirror this machine's apt uses for SUITE, else deb.debian.org."""
    for path in sources:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        # one-line style: deb [options] URI SUITE components
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if m.group(2) == SUITE:
                return m.group(1).rstrip("/")
        # deb822 style: a stanza with URIs: and Suites: naming SUITE
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1).rstrip("/")
    return DEFAULT_MIRROR


def apt_sources() -> list[Path]:
    folder = Path("/etc/apt/sources.list.d")
    found = sorted(folder.glob("*.sources")) + sorted(folder.glob("*.list"))
    return [*found, Path("/etc/apt/sources.list")]


def root_path(arch: str, environ: Mapping[str, str]) -> Path:
    recipe = "\n".join([SUITE, DEBIAN_ARCH[arch], *PACKAGES]).encode()
    key = hashlib.sha256(recipe).hexdigest()[:12]
    return cache_home(environ) / "roots" / f"{SUITE}-{DEBIAN_ARCH[arch]}-{key}"


def check_prerequisites(arch: str) -> None:
    """Each missing piece, one line that says what to do."""
    other = f"build on an {arch} machine, or where a Docker engine answers (BUILDER=docker)"
    if os.geteuid() != 0:
        raise BuildError(
            f"ARCH={arch} on this {host_architecture()} machine builds in an {arch} Debian "
            f"root (chroot, mount): run it as root, or {other}"
        )
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise BuildError(f"ARCH={arch} needs {tool}: apt-get install {package}")
    name = BINFMT_NAME[arch]
    conf = Path("/usr/lib/binfmt.d") / f"{name}.conf"
    if not conf.is_file():
        raise BuildError(f"ARCH={arch} needs qemu's {name}: apt-get install qemu-user-static")
    if not (BINFMT / "register").exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            raise BuildError(
                f"binfmt_misc is not mounted and could not be ({mounted.stderr.strip()}): run "
                f"`mount -t binfmt_misc binfmt_misc {BINFMT}` as root on the host, or {other}"
            )
        say(f"    mounted binfmt_misc at {BINFMT}")
    entry = BINFMT / name
    if not entry.exists():
        try:
            (BINFMT / "register").write_text(conf.read_text().strip() + "\n")
        except OSError as e:
            raise BuildError(
                f"could not register {name} with binfmt_misc ({e.strerror}): run "
                f"`update-binfmts --enable {name}` (or systemctl restart systemd-binfmt)"
            ) from None
        say(f"    registered {name} with binfmt_misc ({conf})")
    status = entry.read_text()
    if not status.startswith("enabled"):
        raise BuildError(f"binfmt_misc's {name} is disabled: run `echo 1 > {entry}`")
    flags = re.search(r"^flags:\s*(\S*)", status, re.M)
    if flags is None or "F" not in flags.group(1):
        # Without F the kernel looks for the emulator inside the chroot, where it is not.
        raise BuildError(
            f"binfmt_misc's {name} lacks the F (fix binary) flag, so chroot cannot run it: "
            f"run `echo -1 > {entry}` and build again (it is re-registered from {conf})"
        )


def run(command: Sequence[str], what: str) -> None:
    done = subprocess.run(list(command), check=False)
    if done.returncode != 0:
        raise BuildError(f"{what} failed with status {done.returncode} (its output is above)")


def debootstrap(arch: str, root: Path) -> None:
    mirror = apt_mirror(apt_sources())
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a set-up that died half-way
    partial.parent.mkdir(parents=True, exist_ok=True)
    say(f"    debootstrap {SUITE} {DEBIAN_ARCH[arch]} from {mirror} (about 6 minutes, once)")
    run(
        [
            "debootstrap",
            f"--arch={DEBIAN_ARCH[arch]}",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(partial),
            mirror,
        ],
        "debootstrap",
    )
    (partial / DONE).mkdir(exist_ok=True)
    partial.rename(root)


def copy_host_config(root: Path) -> None:
    """pip inside the root must reach the index exactly as pip outside does."""
    copies = [Path("/etc/resolv.conf"), Path("/etc/pip.conf"), Path("/etc/xdg/pip")]
    bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    copies.append(Path(bundle))
    for source in copies:
        if not source.exists():
            continue
        target = root / source.resolve().relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.unlink(missing_ok=True)
            shutil.copyfile(source.resolve(), target)


def ensure_root(arch: str, environ: Mapping[str, str]) -> Path:
    """The build root of ``arch``, made or brought up to date, each stage printed."""
    check_prerequisites(arch)
    root = root_path(arch, environ)
    started = time.monotonic()
    if (root / DONE).is_dir():
        say(f"==> {arch} build root: {root} (reused)")
    else:
        say(f"==> {arch} build root: {root} (made once, then reused)")
        debootstrap(arch, root)
    copy_host_config(root)
    say(f"    {arch} build root ready in {time.monotonic() - started:.1f} s")
    return root


def root_env(environ: Mapping[str, str], root: Path) -> dict[str, str]:
    """This machine's pip settings, less the local folders the root does not have."""
    env = {}
    for name, value in environ.items():
        if PASSED_ENV.match(name):
            kept = [w for w in value.split() if not local_path_missing(w, root)]
            if kept:
                env[name] = " ".join(kept)
    env.update(PATH=ROOT_PATH, HOME="/root", PYTHONHASHSEED=environ.get("PYTHONHASHSEED", "0"))
    return env


def local_path_missing(word: str, root: Path) -> bool:
    path = word.removeprefix("file://")
    return path.startswith("/") and not (root / path.lstrip("/")).exists()


def enter(arch: str, root: Path, binds: Iterable[Path], command: Sequence[str]) -> None:
    """Run ``command`` in ``root``, with ``binds`` at their own paths, in a mount
    namespace of its own; raises BuildError when it fails."""
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    entry = [sys.executable, "-m", "build.archroot", "--enter", str(root), os.getcwd()]
    for path in binds:
        entry += ["--bind", str(path)]
    done = subprocess.run(
        [*unshare, *entry, "--", *command], cwd=ROOT, env=root_env(os.environ, root), check=False
    )
    if done.returncode != 0:
        raise BuildError(f"the {arch} build root's {Path(command[0]).name} failed (output above)")


def bind_folders(paths: Iterable[Path]) -> list[Path]:
    """The folders to mount so that each path is seen in the root at its own place."""
    folders: list[Path] = [ROOT]
    for path in paths:
        folder = path if path.is_dir() else path.parent
        if not any(folder.is_relative_to(f) for f in folders):
            folders.append(folder)
    return folders


# In the root: make (or reuse) the build-pins-only environment, then run the
# pipeline with its Python; the arguments stay data ("$@"). pip's output goes to
# stderr, so that stdout carries only the environment's path.
FIND_ENV = (
    "import os; from build.buildenv import build_env, describe; out = os.dup(1); "
    "os.dup2(2, 1); print('==> build pins env, the pipeline runs in it (first time: minutes)', "
    "flush=True); env = build_env(None); print('    ' + describe(env, None), flush=True); "
    "os.write(out, str(env.python).encode())"
)
IN_ROOT = (
    f'python=$(/usr/bin/python3 -c "{FIND_ENV}") || exit 1; '
    'exec "$python" -m build.pipeline build "$@"'
)


def build_in_root(arch: str, pipeline_args: Sequence[str], paths: Iterable[Path]) -> None:
    """`python -m build.pipeline build ARGS` in the root of ``arch``."""
    root = ensure_root(arch, os.environ)
    say(f"==> {arch}: the pipeline runs in {root}, under qemu (slower than native)")
    enter(arch, root, bind_folders(paths), ["/bin/sh", "-c", IN_ROOT, "sh", *pipeline_args])


def inside(root: Path, cwd: str, binds: list[str], command: list[str]) -> int:
    """In the private mount namespace: mount, chroot, exec."""
    mounts = [
        # The root its own mount point: else unshare(1) in it (the init check's
        # empty root) cannot make "/" private, and fails with EINVAL.
        ["mount", "--rbind", str(root), str(root)],
        ["mount", "-t", "proc", "proc", str(root / "proc")],
        ["mount", "--rbind", "/dev", str(root / "dev")],
        ["mount", "-t", "tmpfs", "tmpfs", str(root / "tmp")],
    ]
    for path in binds:
        mounts.append(["mount", "--rbind", path, str(root / Path(path).relative_to("/"))])
    for mount in mounts:
        Path(mount[-1]).mkdir(parents=True, exist_ok=True)  # after the mounts before it
        done = subprocess.run(mount, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"build: {' '.join(mount)}: {done.stderr.strip()}", file=sys.stderr)
            return 1
    os.chroot(root)
    os.chdir(cwd if os.path.isdir(cwd) else "/")
    os.execve(command[0], command, dict(os.environ))


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--enter" or "--" not in argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[3:split], argv[split + 1 :]
    binds = [options[i + 1] for i in range(0, len(options), 2) if options[i] == "--bind"]
    return inside(Path(argv[1]), argv[2], binds, command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
