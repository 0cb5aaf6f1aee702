"""The built, static bootstrap: what `make build` and `make zip` produce, run
under the official Runtime Interface Emulator, and in an empty root.

Each binary is built once per test run (the echo default, and a user's
function from another directory with a requirements file).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from build.rie import Emulator, emulator_path, free_port

ROOT = Path(__file__).resolve().parent.parent
USERFUNC = ROOT / "tests" / "fixtures" / "userfunc"
IS_ROOT = os.geteuid() == 0
NOT_ROOT_REASON = "needs root for chroot and mounts (CI runs as root)"
LAMBDA_UID = "993:990"  # an unprivileged user, as Lambda runs bootstrap
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def run_pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "build.pipeline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def build(dist: Path, *extra: str) -> Path:
    built = run_pipeline("build", "--dist", str(dist), *extra)
    assert built.returncode == 0, built.stdout + built.stderr
    zipped = run_pipeline("zip", "--dist", str(dist))
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    return dist


@pytest.fixture(scope="module")
def echo_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("echo-dist"))


@pytest.fixture(scope="module")
def user_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(
        tmp_path_factory.mktemp("user-dist"),
        "--handler",
        "app.handler",
        "--src",
        str(USERFUNC),
        "--requirements",
        str(USERFUNC / "requirements.txt"),
    )


@pytest.fixture(scope="module")
def bare_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(
        tmp_path_factory.mktemp("bare-dist"),
        "--handler",
        "app.handler",
        "--src",
        str(ROOT / "tests" / "fixtures" / "bare"),
    )


def lambda_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing of the build machine's AWS settings."""
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30"}
    env.update(extra)
    return env


def invoke_json(rie: Emulator, event: object) -> tuple[int, object]:
    status, body = rie.invoke(json.dumps(event))
    return status, json.loads(body)


# --- what the build produced ----------------------------------------------------


def test_bootstrap_is_static_by_ldd_and_file(echo_dist: Path) -> None:
    bootstrap = echo_dist / "bootstrap"
    ldd = subprocess.run(["ldd", str(bootstrap)], capture_output=True, text=True, check=False)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    kind = subprocess.run(["file", "-b", str(bootstrap)], capture_output=True, text=True).stdout
    assert "statically linked" in kind
    assert bootstrap.stat().st_mode & 0o777 == 0o755
    assert (echo_dist / "bootstrap.handler").read_text() == "handlers.echo.handler\n"


def test_help_names_the_built_in_handler(echo_dist: Path) -> None:
    ran = subprocess.run(
        [str(echo_dist / "bootstrap"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0
    assert "handler handlers.echo.handler built in" in ran.stdout
    assert "_HANDLER is ignored" in ran.stdout


def test_zip_layout_modes_and_checksums(echo_dist: Path) -> None:
    zip_path = echo_dist / "function.zip"
    with zipfile.ZipFile(zip_path) as z:
        (info,) = z.infolist()
        assert info.filename == "bootstrap"
        mode = info.external_attr >> 16
        assert mode == 0o100755
        assert not mode & 0o002, "world-writable entry"
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert z.read("bootstrap") == (echo_dist / "bootstrap").read_bytes()
    digest = hashlib.sha256(zip_path.read_bytes()).digest()
    assert (echo_dist / "function.zip.sha256").read_text() == f"{digest.hex()}  function.zip\n"
    again = run_pipeline("zip", "--dist", str(echo_dist))
    assert hashlib.sha256(zip_path.read_bytes()).digest() == digest, "zip is not reproducible"
    assert f"CodeSha256: {base64.b64encode(digest).decode()}" in again.stdout


def test_the_same_inputs_build_the_same_bootstrap(echo_dist: Path, tmp_path: Path) -> None:
    # Pinned tools, PYTHONHASHSEED=0, and staticx's archive without the build's
    # clock or user: a rebuild gives the same bytes, so the same CodeSha256.
    again = build(tmp_path / "again")
    assert (again / "bootstrap").read_bytes() == (echo_dist / "bootstrap").read_bytes()
    assert (again / "function.zip.sha256").read_text() == (
        echo_dist / "function.zip.sha256"
    ).read_text()


def test_malformed_handler_fails_the_build_at_once(tmp_path: Path) -> None:
    built = run_pipeline("build", "--dist", str(tmp_path), "--handler", "echo")
    assert built.returncode == 1
    assert "HANDLER='echo' is not module.function" in built.stderr
    missing = run_pipeline("build", "--dist", str(tmp_path), "--handler", "nowhere.handler")
    assert missing.returncode == 1
    assert "module 'nowhere' of HANDLER=nowhere.handler is not in" in missing.stderr


# --- under the official emulator -------------------------------------------------


def test_echo_round_trip_and_200_sequential_invokes(echo_dist: Path) -> None:
    with Emulator([str(echo_dist / "bootstrap")], env=lambda_env(), cwd=echo_dist) as rie:
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
        for i in range(200):
            assert invoke_json(rie, {"n": i}) == (200, {"n": i})
    assert "INIT REPORT" in rie.log()


def test_bundled_handler_wins_over_HANDLER(echo_dist: Path) -> None:
    # The article deploys with --handler function.handler: the echo build still echoes.
    env = lambda_env(_HANDLER="function.handler")
    with Emulator([str(echo_dist / "bootstrap")], env=env, cwd=echo_dist) as rie:
        assert invoke_json(rie, {"text": "Hello"}) == (200, {"text": "Hello"})


def test_user_handler_with_requirements(user_dist: Path) -> None:
    assert (user_dist / "bootstrap.handler").read_text() == "app.handler\n"
    with Emulator([str(user_dist / "bootstrap")], env=lambda_env(), cwd=user_dist) as rie:
        status, body = invoke_json(rie, {"action": "powertools"})
        assert status == 200
        assert isinstance(body, dict)
        assert body["service"] == "userfunc"
        assert body["request_id"]
        # The emulator buffers a streamed response and returns it whole.
        assert rie.invoke(json.dumps({"action": "stream"})) == (200, b"streamed")
        status, error = invoke_json(rie, {"action": "raise"})
    assert isinstance(error, dict)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom"
    assert any('app.py", line' in frame and "in handler" in frame for frame in error["stackTrace"])
    assert not any("runtime/" in frame for frame in error["stackTrace"])
    log = rie.log()
    # powertools' structured record reached the log stream
    assert '"message":"hello from powertools"' in log
    assert "[ERROR] ValueError: boom" in log


def test_every_runtime_path_works_in_the_smallest_bundle(bare_dist: Path) -> None:
    # The build leaves out what neither handler nor runtime uses: a handler that
    # imports nothing must still get start-up hooks' modules, the error paths'
    # (tracebacks, linecache), streaming and the init error report.
    bootstrap = str(bare_dist / "bootstrap")
    with Emulator([bootstrap], env=lambda_env(), cwd=bare_dist) as rie:
        status, body = invoke_json(rie, {"x": 1})
        assert status == 200 and isinstance(body, dict) and body["bare"] is True
        status, error = invoke_json(rie, {"raise": True})
        assert isinstance(error, dict)
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bare boom")
        assert any("in handler" in frame for frame in error["stackTrace"])
        assert rie.invoke('{"stream": true}') == (200, b"ab")
        assert rie.invoke("not json")[1].startswith(b'{"errorMessage": "Unable to unmarshal')
    with Emulator([bootstrap], env=lambda_env(BARE_FAIL_INIT="1"), cwd=bare_dist) as rie:
        status, body = rie.invoke("{}")
    assert status == 502
    assert json.loads(body)["errorMessage"] == "bare init failed on purpose"


def test_init_error_is_reported(user_dist: Path) -> None:
    env = lambda_env(APP_FAIL_INIT="1")
    with Emulator([str(user_dist / "bootstrap")], env=env, cwd=user_dist) as rie:
        status, body = rie.invoke("{}")
    assert status == 502  # the emulator's answer to a failed init
    error = json.loads(body)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "init failed on purpose"
    assert "[ERROR] RuntimeError: init failed on purpose" in rie.log()


def extraction_dirs(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir() if p.name.startswith(("staticx-", "_MEI"))}


def test_killed_bootstraps_do_not_fill_tmp(echo_dist: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = lambda_env(TMPDIR=str(tmp))
    with Emulator([str(echo_dist / "bootstrap")], env=env, cwd=echo_dist) as rie:
        assert rie.invoke("{}")[0] == 200
    # The emulator's stop SIGKILLs the runtime, as Lambda does on a timeout.
    killed = extraction_dirs(tmp)
    assert len(killed) == 2, killed  # staticx's and PyInstaller's, left behind
    (tmp / "_MEI-someone-elses").mkdir()  # unmarked: not ours to remove
    with Emulator([str(echo_dist / "bootstrap")], env=env, cwd=echo_dist) as rie:
        assert rie.invoke("{}")[0] == 200
        now = extraction_dirs(tmp)
    assert not killed & now, "the stale extraction directories were not swept"
    assert len(now) == 3
    assert "_MEI-someone-elses" in now


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_full_tmp_gives_a_short_message(echo_dist: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        ran = subprocess.run(
            [str(echo_dist / "bootstrap")],
            env=lambda_env(TMPDIR=str(small), AWS_LAMBDA_RUNTIME_API="127.0.0.1:1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert ran.returncode != 0
    said = ran.stderr.strip().splitlines()
    assert said and len(said) <= 2, ran.stderr
    assert "Traceback" not in ran.stderr


# --- the empty root: only the binary, /tmp, /proc, /dev/null, an unprivileged user ---


class EmptyRoot:
    def __init__(self, base: Path, bootstrap: Path):
        self.root = base / "root"
        self.bootstrap = bootstrap
        self.mounts: list[Path] = []

    def __enter__(self) -> EmptyRoot:
        task = self.root / "var" / "task"
        task.mkdir(parents=True)
        (self.root / "tmp").mkdir()
        (self.root / "tmp").chmod(0o1777)
        (self.root / "proc").mkdir()
        (self.root / "dev").mkdir()
        (task / "bootstrap").touch()
        (self.root / "dev" / "null").touch()
        self._mount(["--bind", str(self.bootstrap)], task / "bootstrap")
        self._mount(["-o", "remount,ro,bind"], task / "bootstrap", record=False)
        self._mount(["--bind", "/dev/null"], self.root / "dev" / "null")
        self._mount(["-t", "proc", "proc"], self.root / "proc")
        shutil.copy(emulator_path(), self.root / "rie")
        return self

    def _mount(self, args: list[str], target: Path, record: bool = True) -> None:
        subprocess.run(["mount", *args, str(target)], check=True)
        if record:
            self.mounts.append(target)

    def emulator(self, env: dict[str, str]) -> Emulator:
        """The emulator, copied into the root, run there as the unprivileged user."""
        return Emulator(
            ["/var/task/bootstrap"],
            env=env,
            cwd="/",
            launcher=[CHROOT, f"--userspec={LAMBDA_UID}", str(self.root)],
            emulator="/rie",
        )

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)


def make_test_ca(workdir: Path) -> tuple[Path, Path, str]:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=staticlambda test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (workdir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    )
    return workdir / "server.pem", workdir / "server.key", (workdir / "ca.pem").read_text()


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    import ssl

    cert, key, ca_pem = make_test_ca(tmp_path)

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello over tls")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", ca_pem
    server.shutdown()


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_echo_in_an_empty_root(echo_dist: Path, tmp_path: Path) -> None:
    with EmptyRoot(tmp_path, echo_dist / "bootstrap") as root, root.emulator(lambda_env()) as rie:
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
        owners = {(root.root / "tmp" / d).stat().st_uid for d in extraction_dirs(root.root / "tmp")}
    assert owners == {int(LAMBDA_UID.split(":")[0])}


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_tls_verifies_in_an_empty_root(
    user_dist: Path, tmp_path: Path, https_server: tuple[str, str]
) -> None:
    url, ca_pem = https_server
    with EmptyRoot(tmp_path, user_dist / "bootstrap") as root, root.emulator(lambda_env()) as rie:
        status, body = invoke_json(rie, {"action": "tls", "url": url, "ca_pem": ca_pem})
    assert status == 200, body
    assert isinstance(body, dict)
    # The binary's own CA bundle is loaded, though the root has no /etc at all...
    assert body["ca_certificates"] > 100
    # ...and certificates are verified: an unknown CA is refused, a trusted one accepted.
    assert body["untrusted_server"] == "refused: SSLCertVerificationError"
    assert body["trusted_server"] == "ok: hello over tls"


# --- Lambda Managed Instances: the checks of tests/test_workers.py, on the binary ---


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_managed_instances_serve_four_invokes_at_once(
    user_dist: Path, tmp_path: Path, log_format: str
) -> None:
    from test_workers import check_invokes_at_once

    check_invokes_at_once(
        [str(user_dist / "bootstrap")], user_dist, log_format, TMPDIR=str(tmp_path)
    )


def test_managed_instances_replace_a_dead_worker(user_dist: Path, tmp_path: Path) -> None:
    from test_workers import check_dead_worker_replaced

    check_dead_worker_replaced([str(user_dist / "bootstrap")], user_dist, TMPDIR=str(tmp_path))


def test_managed_instances_stop_on_sigterm_and_leave_tmp_empty(
    user_dist: Path, tmp_path: Path
) -> None:
    from test_workers import check_sigterm_finishes_invokes_in_flight

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    check_sigterm_finishes_invokes_in_flight(
        [str(user_dist / "bootstrap")], user_dist, TMPDIR=str(tmp)
    )
    assert list(tmp.iterdir()) == []
