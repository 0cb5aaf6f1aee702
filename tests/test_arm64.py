"""ARCH=arm64: an aarch64 bootstrap built on this x86_64 machine (build/archroot.py),
checked as the x86_64 one is, and run under the arm64 emulator through qemu.

The headers and the build's own checks run everywhere; the built binaries need
root, debootstrap, qemu-user-static and binfmt_misc (as root, the test set-up
installs the packages, as CI runs it) and skip otherwise, naming what is missing.
The first run on a machine makes the arm64 build root (minutes; README).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from makefile_support import MAKE_VARIABLES, recorded_make
from support import debian_tool

from build import archroot, elf
from build.errors import BuildError
from build.rie import Emulator, emulator_path
from build.verify import verify_static

ROOT = Path(__file__).resolve().parent.parent
BARE = ROOT / "tests" / "fixtures" / "bare"


def elf_file(path: Path, machine: int, interpreter: bytes | None = None) -> Path:
    """A minimal 64-bit little-endian ELF executable header, with a PT_INTERP if asked."""
    phnum = 1 if interpreter else 0
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack(
        "<HHIQQQIHHHHHH", 2, machine, 1, 0x400000, 64, 0, 0, 64, 56, phnum, 0, 0, 0
    )
    body = b""
    if interpreter:
        offset = 64 + 56
        body = struct.pack("<IIQQQQQQ", 3, 4, offset, 0, 0, len(interpreter), len(interpreter), 1)
        body += interpreter
    path.write_bytes(header + body)
    path.chmod(0o755)
    return path


# --- without a build root -------------------------------------------------------------


def test_the_headers_name_the_architecture_and_the_loader(tmp_path: Path) -> None:
    arm = elf.read(elf_file(tmp_path / "a", 0xB7, b"/lib/ld-linux-aarch64.so.1\0"))
    assert (arm.architecture, arm.interpreter, arm.dynamic) == (
        "arm64",
        "/lib/ld-linux-aarch64.so.1",
        False,
    )
    assert elf.read(elf_file(tmp_path / "x", 0x3E)).architecture == "x86_64"
    assert elf.architecture(tmp_path / "missing") is None
    with pytest.raises(elf.ElfError, match="neither x86_64 nor arm64"):
        elf.read(elf_file(tmp_path / "r", 0xF3))  # RISC-V


def test_a_dynamic_arm64_binary_is_refused_though_ldd_cannot_read_it(tmp_path: Path) -> None:
    # Host ldd says "not a dynamic executable" of any foreign binary: the old check
    # let this pass. The headers name the loader, and the build stops.
    bootstrap = elf_file(tmp_path / "bootstrap", 0xB7, b"/lib/ld-linux-aarch64.so.1\0")
    with pytest.raises(BuildError, match=r"names the loader /lib/ld-linux-aarch64\.so\.1"):
        verify_static(bootstrap)


def test_arch_is_spelt_as_lambda_spells_it() -> None:
    assert [elf.lambda_architecture(a) for a in ("aarch64", "ARM64", "amd64")] == [
        "arm64",
        "arm64",
        "x86_64",
    ]


def test_an_unknown_arch_fails_the_build_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build.pipeline", "build", "--arch", "sparc64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        "build: ARCH=sparc64 is neither x86_64 nor arm64\n",
    )


def test_make_passes_arch_to_the_pipeline_and_to_docker(tmp_path: Path) -> None:
    calls, _ = recorded_make(tmp_path / "n", "build", "BUILDER=native", "ARCH=arm64")
    assert "--arch=arm64" in calls[-1]
    calls, _ = recorded_make(tmp_path / "d", "build", "BUILDER=docker", "ARCH=arm64")
    docker_run = next(c for c in calls if c[:2] == ["docker", "run"])
    assert docker_run[docker_run.index("--platform") + 1] == "linux/arm64"
    assert "--arch=arm64" in docker_run


def test_the_mirror_is_the_one_apt_uses(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert archroot.apt_mirror([deb822, one_line]) == "http://mirror.example/debian"
    assert archroot.apt_mirror([one_line]) == "http://other.example/debian"
    assert archroot.apt_mirror([tmp_path / "none"]) == archroot.DEFAULT_MIRROR


def test_without_root_the_build_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BuildError, match=r"builds in an arm64 Debian root \(chroot, mount\): run"):
        archroot.check_prerequisites("arm64")


def test_the_arm64_emulator_is_pinned_and_chosen_by_the_binarys_header(tmp_path: Path) -> None:
    arm = emulator_path("arm64")
    assert elf.read(arm).architecture == "arm64"
    bootstrap = elf_file(tmp_path / "bootstrap", 0xB7)
    assert Emulator([str(bootstrap)]).architecture() == "arm64"
    assert Emulator([sys.executable, "-m", "runtime"]).architecture() == elf.host_architecture()


# --- built in the arm64 root ------------------------------------------------------------


def missing_prerequisite() -> str | None:
    if elf.host_architecture() == "arm64":
        return None  # native: the ordinary build
    if os.geteuid() != 0:
        return "needs root for the arm64 build root (chroot, mount; CI runs as root)"
    for tool, package in (("debootstrap", "debootstrap"), ("file", "file")):
        if shutil.which(tool) is None:
            return f"needs {tool}: apt-get install {package}"
    if not Path("/usr/lib/binfmt.d/qemu-aarch64.conf").is_file():
        return "needs qemu-user-static: apt-get install qemu-user-static"
    try:
        archroot.check_prerequisites("arm64")
    except BuildError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def arm64_prerequisites() -> None:
    """As root on x86_64, the Debian tools the arm64 root needs are installed here
    (the README's `make test` installs what it needs); otherwise skip, naming them."""
    if elf.host_architecture() != "arm64" and os.geteuid() == 0:
        for command, package in (
            ("debootstrap", "debootstrap"),
            ("qemu-aarch64-static", "qemu-user-static"),
            ("file", "file"),
        ):
            debian_tool(command, package)
    missing = missing_prerequisite()
    if missing is not None:
        pytest.skip(missing)


def make(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    print(done.stdout + done.stderr)  # the root's set-up times, in the test log
    return done


@pytest.fixture(scope="session")
def arm64_echo(arm64_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make build ARCH=arm64` then `make zip` of the echo handler, as a user runs them."""
    dist = tmp_path_factory.mktemp("arm64-echo")
    built = make("build", "ARCH=arm64", f"DIST={dist}")
    assert built.returncode == 0, built.stdout + built.stderr
    zipped = make("zip", f"DIST={dist}")
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    # zip reads the architecture from the record: no ARCH given, and nothing rebuilt.
    assert f"zip: {dist / 'bootstrap'} as built (HANDLER=" in zipped.stdout
    assert "ARCH=arm64)" in zipped.stdout and "==> freeze" not in zipped.stdout
    return dist


@pytest.fixture(scope="session")
def arm64_bare(arm64_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("arm64-bare")
    built = make("build", "ARCH=arm64", "HANDLER=app.handler", f"SRC={BARE}", f"DIST={dist}")
    assert built.returncode == 0, built.stdout + built.stderr
    return dist


def lambda_env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT": "60", **extra}


def test_the_arm64_bootstrap_is_a_static_aarch64_executable(arm64_echo: Path) -> None:
    bootstrap = arm64_echo / "bootstrap"
    kind = subprocess.run(["file", "-b", str(bootstrap)], capture_output=True, text=True).stdout
    assert "ARM aarch64" in kind and "statically linked" in kind, kind
    info = elf.read(bootstrap)
    assert (info.architecture, info.interpreter, info.dynamic) == ("arm64", None, False)
    # readelf (binutils reads every architecture) agrees: no loader, no dynamic section.
    segments = subprocess.run(
        ["readelf", "-lW", str(bootstrap)], capture_output=True, text=True, check=True
    ).stdout
    assert (
        "AArch64"
        in subprocess.run(
            ["readelf", "-h", str(bootstrap)], capture_output=True, text=True, check=True
        ).stdout
    )
    assert " INTERP " not in segments and " DYNAMIC " not in segments
    assert bootstrap.stat().st_mode & 0o777 == 0o755


def test_the_record_and_the_zip_carry_the_architecture(arm64_echo: Path) -> None:
    record = json.loads((arm64_echo / "bootstrap.inputs.json").read_text())
    assert record["architecture"] == "arm64" and record["inputs"]["arch"] == "arm64"
    with zipfile.ZipFile(arm64_echo / "function.zip") as z:
        assert z.namelist() == ["bootstrap"]
        assert elf.ELF_MACHINES[struct.unpack_from("<H", z.read("bootstrap"), 18)[0]] == "arm64"


def test_the_arm64_build_keeps_its_cache_apart(arm64_echo: Path) -> None:
    # The root mounts this repository: its aarch64 loader (same patch, same sdist,
    # same key) once landed in .cache/loader, and every later x86_64 build broke.
    from build.paths import CACHE

    loaders = list((CACHE / "loader").glob("*/bootloader"))
    arm_loaders = list((ROOT / ".cache" / "arm64" / "loader").glob("*/bootloader"))
    assert arm_loaders and {elf.architecture(p) for p in arm_loaders} == {"arm64"}
    assert {elf.architecture(p) for p in loaders} <= {elf.host_architecture()}


def test_make_invoke_answers_under_the_arm64_emulator(arm64_echo: Path) -> None:
    done = make("invoke", f"DIST={arm64_echo}", 'EVENT={"text": "Hello arm64"}', timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith('{"text": "Hello arm64"}')
    assert "REPORT RequestId" in done.stdout


def test_init_and_handler_errors_are_reported_as_on_x86_64(arm64_bare: Path) -> None:
    bootstrap = str(arm64_bare / "bootstrap")
    with Emulator([bootstrap], env=lambda_env(), cwd=arm64_bare) as rie:
        assert rie.architecture() == "arm64"
        status, body = rie.invoke(json.dumps({"x": 1}), timeout=120)
        assert status == 200 and json.loads(body)["bare"] is True
        status, body = rie.invoke(json.dumps({"raise": True}), timeout=120)
        error = json.loads(body)
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bare boom")
        assert any("in handler" in frame for frame in error["stackTrace"])
    with Emulator([bootstrap], env=lambda_env(BARE_FAIL_INIT="1"), cwd=arm64_bare) as rie:
        status, body = rie.invoke("{}", timeout=120)
    assert status == 502
    assert json.loads(body)["errorMessage"] == "bare init failed on purpose"


def test_deploy_plans_arm64_from_the_zip_and_refuses_another_arch(
    arm64_echo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import MotoServer

    server = MotoServer(tmp_path / "moto.log")
    try:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        for name, value in {
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }.items():
            monkeypatch.setenv(name, value)
        deploy = ("deploy", "FUNCTION=hello-arm", "CREATE_ROLE=1", f"DIST={arm64_echo}")
        plan = make(*deploy, "DRY_RUN=1")
        wrong = make(*deploy, "ARCH=x86_64")
        done = make(*deploy)
        import boto3

        landed = boto3.client("lambda").get_function(FunctionName="hello-arm")["Configuration"]
    finally:
        server.stop()
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "bootstrap arm64" in plan.stdout
    assert plan.stdout.count("would create it") == 1
    assert ", Architectures arm64" in plan.stdout and "dry run: nothing was changed" in plan.stdout
    assert wrong.returncode != 0
    assert (
        "deploy: error: ARCH=x86_64, but bootstrap in "
        f"{arm64_echo / 'function.zip'} is built for arm64: rebuild for x86_64, or drop ARCH"
    ) in wrong.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert landed["Architectures"] == ["arm64"]


@pytest.mark.skipif(elf.host_architecture() != "x86_64", reason="the refusal is x86_64's")
def test_bench_refuses_to_time_qemu() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build.bench", "--arch", "arm64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("bench: ARCH=arm64 on this x86_64 machine would time qemu")
