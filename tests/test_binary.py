"""The built, static bootstrap: what `make build` and `make zip` produce, run
under the official Runtime Interface Emulator, and in an empty root.

Each binary is built once per test run (the echo default and a user's function
from another directory with a requirements file: conftest.py; the others here).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import botocore.session
import pytest
from support import ROOT, build, build_function, run_pipeline

from build.botocore_models import SECTION
from build.image import make_image
from build.rie import Emulator, emulator_path, free_port
from runtime.inittrace import PROGRAM_STAGE, STATICX_STAGE

BOTO3FUNC = ROOT / "tests" / "fixtures" / "boto3func"
IS_ROOT = os.geteuid() == 0
NOT_ROOT_REASON = "needs root for chroot and mounts (CI runs as root)"
LAMBDA_UID = "993:990"  # an unprivileged user, as Lambda runs bootstrap
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


@pytest.fixture(scope="module")
def boto3_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_function(tmp_path_factory.mktemp("boto3-dist"), BOTO3FUNC)


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
    # It runs in a fresh PyInstaller work folder (the pipeline's cache pointed
    # elsewhere), so nothing PyInstaller cached from the first build is reused.
    cache = tmp_path / "cache"
    again = tmp_path / "again"
    rebuilt = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; import build.pipeline as p; "
            "import build.stages as s; s.CACHE = Path(sys.argv[1]); "
            "sys.exit(p.main(['build', '--dist', sys.argv[2]])"
            " or p.main(['zip', '--dist', sys.argv[2]]))",
            str(cache),
            str(again),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # as python -m build.pipeline sets it
        capture_output=True,
        text=True,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert list(cache.glob("build/*/work")), "the rebuild did not use a fresh work folder"
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
    assert missing.stderr == (
        "build: HANDLER=nowhere.handler: no module 'nowhere' in this repository's handlers; "
        "give SRC=<your function's folder>\n"
    )


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


def dump_section(program: Path, name: str, tmp_path: Path) -> bytes:
    section = tmp_path / "section"
    # An output file of its own: objcopy would rewrite the program in place.
    subprocess.run(
        ["objcopy", "--dump-section", f"{name}={section}", str(program), str(tmp_path / "copy")],
        check=True,
    )
    return section.read_bytes()


def staticx_archive_names(program: Path, tmp_path: Path) -> list[str]:
    """The files staticx's loader unpacks at every cold start."""
    data = dump_section(program, ".staticx.archive", tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return [member.name for member in archive.getmembers() if member.isfile()]


def test_boto3_clients_of_any_service_from_the_bundled_models(
    boto3_dist: Path, tmp_path: Path
) -> None:
    # botocore's ~2,000 model files ship as one archive in a section of the
    # bootstrap, read in place: the cold start neither unpacks nor writes them
    # (build/botocore_models.py)...
    bootstrap = boto3_dist / "bootstrap"
    names = staticx_archive_names(bootstrap, tmp_path)
    assert not [n for n in names if "botocore/data" in n]
    assert len(names) < 500
    models = zipfile.ZipFile(io.BytesIO(dump_section(bootstrap, SECTION, tmp_path)))
    assert len([n for n in models.namelist() if "/service-2.json" in n]) > 300
    # ...and boto3 works as from the folder: the client made at import, another
    # service's made in the handler, its paginators, waiters, boto3's resources.
    # As Lambda gives a function its role's credentials: boto3 then looks for
    # no others (no instance metadata request leaves the machine).
    env = lambda_env(AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="test")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    with Emulator([str(bootstrap)], env=env, cwd=boto3_dist) as rie:
        status, body = invoke_json(rie, {})
    assert status == 200, body
    assert isinstance(body, dict)
    assert body["import_client"] == "s3"
    assert body["handler_client"] == "dynamodb"
    assert body["endpoint"] == "https://dynamodb.eu-west-1.amazonaws.com"
    assert body["can_paginate"] is True
    assert "table_exists" in body["waiters"]
    assert body["resource"] == "sqs"
    if body["botocore"] == botocore.__version__:  # the same models as this process reads
        session = botocore.session.get_session()
        assert body["services"] == len(session.get_available_services())
        s3 = session.get_service_model("s3")
        assert body["s3_operations"] == len(s3.operation_names)
    else:
        assert body["services"] > 300 and body["s3_operations"] > 90


def test_a_boto3_the_requirements_pin_is_the_one_bundled(boto3_dist: Path) -> None:
    # Lambda's runtime ships boto3, so the build adds it to a function that imports it
    # without requiring it (build/provided_sdk.py); this one pins its own: theirs is used.
    pinned = dict(line.split("==") for line in (BOTO3FUNC / "requirements.txt").read_text().split())
    sbom = json.loads((boto3_dist / "bootstrap.cdx.json").read_text())
    found = {
        c["name"]: (c["version"], {p["name"]: p["value"] for p in c["properties"]})
        for c in sbom["components"]
        if c["name"] in ("boto3", "botocore")
    }
    assert found["boto3"][0] == pinned["boto3"]
    assert found["boto3"][1]["staticlambda:part"] == "requirements"
    assert found["botocore"][1]["staticlambda:part"] == "requirements"


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
    # One extraction per cold start: staticx's, holding PyInstaller's onedir tree.
    assert len(killed) == 1 and next(iter(killed)).startswith("staticx-"), killed
    assert (tmp / next(iter(killed)) / "_internal").is_dir()
    (tmp / "staticx-someone-elses").mkdir()  # unmarked: not ours to remove
    with Emulator([str(echo_dist / "bootstrap")], env=env, cwd=echo_dist) as rie:
        assert rie.invoke("{}")[0] == 200
        now = extraction_dirs(tmp)
    assert not killed & now, "the stale extraction directory was not swept"
    assert len(now) == 2
    assert "staticx-someone-elses" in now


def test_init_trace_names_the_two_processes(echo_dist: Path, tmp_path: Path) -> None:
    ran = subprocess.run(
        [str(echo_dist / "bootstrap")],
        env=lambda_env(
            TMPDIR=str(tmp_path),
            AWS_LAMBDA_RUNTIME_API="127.0.0.1:1",
            STATICLAMBDA_INIT_TRACE="1",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    phases = [
        line.split(" ms  ", 1)[1].split("  (from", 1)[0]
        for line in ran.stderr.splitlines()
        if line.startswith("staticlambda init:") and "(from +" in line
    ]
    # staticx's loader, then the program (PyInstaller's bootloader and Python in
    # one process): no PyInstaller parent unpacking a second copy.
    assert phases == [
        STATICX_STAGE,
        PROGRAM_STAGE,
        "bootstrap: CA bundle, sweep of old extractions",
        "imports: the runtime, httpx",
        "Runtime API client",
        "handler import: handlers.echo.handler",
    ], ran.stderr
    assert list(tmp_path.iterdir()) == []  # the loader removed its copy when it ended


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
        left = list(small.iterdir())
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert ran.returncode == 2, ran.stderr
    # The patched loader's one line (build/patches/): where, why, how much it
    # needs and how much was free; not the stock `tar_extract_all() failed:
    # Invalid argument`, nor a runtime that started and could not connect.
    said = ran.stderr.strip().splitlines()
    assert len(said) == 1, ran.stderr
    needed = (echo_dist / "bootstrap").stat().st_size / 1e6
    assert said[0].startswith(f"bootstrap: cannot unpack into {small}/staticx-"), said[0]
    assert ": No space left on device: the program needs " in said[0]
    figure = float(said[0].split("the program needs ")[1].split(" MB")[0])
    assert 0.5 * needed < figure <= needed, (figure, needed)
    assert "MB were free; free space there or point TMPDIR at a larger directory" in said[0]
    assert left == [], "the partial extraction was left behind"


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


# --- the container image (build/image.py) -----------------------------------------


def oci_blob(archive: tarfile.TarFile, digest: str) -> bytes:
    data = archive.extractfile(f"blobs/sha256/{digest.split(':')[1]}").read()  # type: ignore[union-attr]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest  # content-addressed
    return data


@pytest.fixture(scope="module")
def echo_image(echo_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image")
    built = subprocess.run(
        [sys.executable, "-m", "build.image", "--dist", str(echo_dist)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert "ENTRYPOINT /bootstrap only" in built.stdout
    shutil.move(echo_dist / "image.oci.tar", out / "image.oci.tar")
    return out / "image.oci.tar"


def test_the_image_holds_only_bootstrap_as_its_entrypoint(
    echo_image: Path, echo_dist: Path
) -> None:
    with tarfile.open(echo_image) as archive:
        assert json.loads(archive.extractfile("oci-layout").read()) == {  # type: ignore[union-attr]
            "imageLayoutVersion": "1.0.0"
        }
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
        (entry,) = index["manifests"]
        manifest = json.loads(oci_blob(archive, entry["digest"]))
        config = json.loads(oci_blob(archive, manifest["config"]["digest"]))
        (layer,) = manifest["layers"]
        layer_tar = gzip.decompress(oci_blob(archive, layer["digest"]))
    assert config["config"] == {"Entrypoint": ["/bootstrap"]}  # no Cmd, Env, shell
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as files:
        (only,) = files.getmembers()
        assert (only.name, only.mode, only.uid, only.mtime) == ("bootstrap", 0o755, 0, 0)
        assert files.extractfile(only).read() == (echo_dist / "bootstrap").read_bytes()  # type: ignore[union-attr]


def test_the_image_rebuilds_to_the_same_digest(echo_image: Path, echo_dist: Path) -> None:
    again = make_image(echo_dist / "bootstrap")
    assert again.archive == echo_image.read_bytes()
    with tarfile.open(echo_image) as archive:
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
    assert again.manifest_digest == index["manifests"][0]["digest"]


@pytest.mark.skipif(not IS_ROOT, reason=NOT_ROOT_REASON)
def test_the_images_layer_answers_the_echo_in_an_empty_root(
    echo_image: Path, tmp_path: Path
) -> None:
    """Containers cannot start on this VM (crun/runc: setrlimit RLIMIT_NPROC refused), so
    the layer is unpacked into an empty root and its ENTRYPOINT run under the emulator."""
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(echo_image) as archive:
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(oci_blob(archive, index["manifests"][0]["digest"]))
        config = json.loads(oci_blob(archive, manifest["config"]["digest"]))
        layer = gzip.decompress(oci_blob(archive, manifest["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer)) as files:
        # Unpacked by hand: Debian 12's Python has no tarfile extraction filters.
        (only,) = files.getmembers()
        assert only.isfile() and "/" not in only.name
        unpacked = root / only.name
        unpacked.write_bytes(files.extractfile(only).read())  # type: ignore[union-attr]
        unpacked.chmod(only.mode)
    assert config["config"]["Entrypoint"] == [f"/{only.name}"]
    for name in ("tmp", "proc", "dev"):
        (root / name).mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "dev" / "null").touch()
    shutil.copy(emulator_path(), root / "rie")
    mounts = [root / "dev" / "null", root / "proc"]
    subprocess.run(["mount", "--bind", "/dev/null", str(mounts[0])], check=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(mounts[1])], check=True)
    try:
        with Emulator(
            config["config"]["Entrypoint"],
            env=lambda_env(),
            cwd="/",
            launcher=[CHROOT, f"--userspec={LAMBDA_UID}", str(root)],
            emulator="/rie",
        ) as rie:
            assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
    finally:
        for target in reversed(mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)


def test_skopeo_reads_the_image_as_written(echo_image: Path, skopeo: str) -> None:
    """skopeo: Debian's, installed by the test set-up where missing (tests/conftest.py)."""
    inspected = subprocess.run(
        [skopeo, "inspect", f"oci-archive:{echo_image}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(inspected.stdout)
    assert (seen["Architecture"], seen["Os"], len(seen["Layers"])) == ("amd64", "linux", 1)
    with tarfile.open(echo_image) as archive:
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
    assert seen["Digest"] == index["manifests"][0]["digest"]


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


def test_managed_instances_shutdown_runs_busy_workers_callbacks_and_leaves_tmp_empty(
    user_dist: Path, tmp_path: Path
) -> None:
    """As Managed Instances shuts down: invokes aborted, SIGTERM to the group,
    SIGKILL 600 ms later. Every busy worker's callbacks run within the window,
    and the bootstrap exits in time for its loader to empty /tmp."""
    from test_workers import check_shutdown_runs_each_worker_s_callbacks_in_its_window

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    check_shutdown_runs_each_worker_s_callbacks_in_its_window(
        [str(user_dist / "bootstrap")], user_dist, TMPDIR=str(tmp)
    )
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("concurrency", [4, None], ids=["4-workers", "unset"])
def test_managed_instances_late_answer_costs_one_invoke(
    user_dist: Path, tmp_path: Path, concurrency: int | None
) -> None:
    from test_workers import check_a_refused_answer_costs_one_invoke

    check_a_refused_answer_costs_one_invoke(
        [str(user_dist / "bootstrap")], user_dist, concurrency, "time_out", TMPDIR=str(tmp_path)
    )


@pytest.mark.parametrize("concurrency", [4, None], ids=["4-workers", "unset"])
def test_next_answered_5xx_is_tried_again_by_the_binary(
    user_dist: Path, tmp_path: Path, concurrency: int | None
) -> None:
    from test_workers import check_next_answered_5xx_then_served

    check_next_answered_5xx_then_served(
        [str(user_dist / "bootstrap")], user_dist, concurrency, TMPDIR=str(tmp_path)
    )


def test_managed_instances_report_a_death_while_the_event_is_read(
    user_dist: Path, tmp_path: Path
) -> None:
    from test_workers import check_a_death_while_the_event_body_is_read_is_reported

    check_a_death_while_the_event_body_is_read_is_reported(
        [str(user_dist / "bootstrap")], user_dist, TMPDIR=str(tmp_path)
    )


def test_the_binary_streams_50_mb_whole_and_stops_past_200_mb(
    user_dist: Path, tmp_path: Path
) -> None:
    from test_workers import check_a_50_mb_stream_arrives_whole_and_past_200_mb_is_refused

    check_a_50_mb_stream_arrives_whole_and_past_200_mb_is_refused(
        [str(user_dist / "bootstrap")], user_dist, 2, TMPDIR=str(tmp_path)
    )


def test_the_binary_ends_on_a_post_never_answered(user_dist: Path, tmp_path: Path) -> None:
    from test_workers import check_a_post_never_answered_ends_the_runtime

    check_a_post_never_answered_ends_the_runtime(
        [str(user_dist / "bootstrap")], user_dist, None, TMPDIR=str(tmp_path)
    )


def test_the_binary_cuts_a_7_mb_error_report_to_fit(user_dist: Path) -> None:
    with Emulator([str(user_dist / "bootstrap")], env=lambda_env(), cwd=user_dist) as rie:
        status, error = invoke_json(rie, {"action": "raise_big", "n": 7_000_000})
        assert status == 200 and isinstance(error, dict)
        assert error["errorType"] == "ValueError"
        assert error["errorMessage"].endswith("xxx [cut to fit Lambda's limit]")
        assert invoke_json(rie, {"action": "echo"}) == (200, {"action": "echo"})
    assert rie.log().count("INIT START") == 1
