"""The official AWS Lambda Runtime Interface Emulator (RIE), pinned.

Its x86_64 and arm64 binaries ship inside the `aws-sam-cli` wheel on PyPI. The wheel is
fetched once with `pip download --no-deps` at a pinned version, its sha256 is
checked, and the binary of the bootstrap's architecture is extracted into
`.cache/rie/` (ignored by git); the binary's own sha256 is checked too, so a
cached copy cannot drift. On an x86_64 machine the arm64 emulator (and the arm64
bootstrap it starts) run through qemu-user-static's binfmt_misc entry.

    Emulator(bootstrap, args).start() ... .invoke(event) ... .stop()
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from build import elf, paths
from build.errors import EmulatorError as EmulatorError  # raised here, caught by callers
from build.package import file_sha256

SAM_CLI_VERSION = "1.170.0"
WHEEL = f"aws_sam_cli-{SAM_CLI_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "24ebaf5ecba38dc1758089968cb89ab61e124b84e92a344fc7a2771a47f4d0bf"
# Lambda's architecture name -> the emulator binary's sha256 (its name ends with the architecture).
BINARY_SHA256 = {
    "x86_64": "6b1e686e62ab2baf5759c412c4864276ef2a88b094fca53ec070637ccba9b9a5",
    "arm64": "ec2e5d09633d853834c008b1ef264bf834b258a94d551d2b2074966494b39a21",
}

CACHE = paths.CACHE / "rie"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def emulator_path(architecture: str = "x86_64") -> Path:
    """The verified emulator binary for this architecture, fetched on first use."""
    if architecture not in BINARY_SHA256:
        raise EmulatorError(f"no emulator for architecture {architecture!r}")
    member = f"samcli/local/rapid/aws-lambda-rie-{architecture}"
    binary = CACHE / f"aws-lambda-rie-{architecture}"
    if binary.exists() and file_sha256(binary) == BINARY_SHA256[architecture]:
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.exists() or file_sha256(wheel) != WHEEL_SHA256:
        print(f"rie: fetching aws-sam-cli=={SAM_CLI_VERSION} for its emulator", file=sys.stderr)
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(CACHE),
                f"aws-sam-cli=={SAM_CLI_VERSION}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fetched.returncode != 0 or not wheel.exists():
            raise EmulatorError(f"could not download aws-sam-cli: {fetched.stderr.strip()[-500:]}")
        if file_sha256(wheel) != WHEEL_SHA256:
            wheel.unlink()
            raise EmulatorError(f"{WHEEL} does not match its pinned sha256; refusing it")
    with zipfile.ZipFile(wheel) as z, tempfile.NamedTemporaryFile(dir=CACHE, delete=False) as out:
        out.write(z.read(member))
    tmp = Path(out.name)
    if file_sha256(tmp) != BINARY_SHA256[architecture]:
        tmp.unlink()
        raise EmulatorError(f"{member} in {WHEEL} does not match its pinned sha256")
    tmp.chmod(0o755)
    tmp.replace(binary)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """The emulator running one runtime command; each instance on its own ports."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: Path | None = None,
        launcher: Sequence[str] = (),
        emulator: str | None = None,
    ):
        """``launcher`` goes before the emulator (``chroot --userspec=... root``),
        and ``emulator`` names its binary as the launcher sees it. Without one,
        the emulator is the one of the command's architecture (an arm64 bootstrap
        gets the arm64 emulator), this machine's when the command is no ELF file."""
        self.command = list(command)
        self.launcher = list(launcher)
        self.emulator = emulator
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.port = free_port()
        self.api_port = free_port()
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="rie-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def architecture(self) -> str:
        command = Path(self.cwd or ".", self.command[0]) if self.command else Path()
        return elf.architecture(command) or elf.host_architecture()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{INVOKE_PATH}"

    def start(self) -> Emulator:
        # free_port() lets its port go before the emulator binds it, so another
        # process may take it in between: then the emulator exits at once, and
        # a fresh pair of ports is tried.
        for attempt in range(5):
            try:
                self._launch()
                return self
            except EmulatorError:
                self.stop()
                if attempt == 4 or "address already in use" not in self.log():
                    raise
                self.port, self.api_port = free_port(), free_port()
        return self

    def _launch(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    *self.launcher,
                    self.emulator or str(emulator_path(self.architecture())),
                    "--runtime-interface-emulator-address",
                    f"127.0.0.1:{self.port}",
                    "--runtime-api-address",
                    f"127.0.0.1:{self.api_port}",
                    *self.command,
                ],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmulatorError(f"the emulator exited at start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.02)
                continue
            # Something listens; make sure it is our emulator, not a squatter
            # while ours died on a taken port (it panics within milliseconds).
            time.sleep(0.05)
            if self.process is not None and self.process.poll() is not None:
                raise EmulatorError(f"the emulator exited at start:\n{self.log()}")
            return
        raise EmulatorError("the emulator did not listen within 10 s")

    def invoke(
        self,
        event: bytes | str = b"{}",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        """POST one event; returns the HTTP status and the body."""
        data = event.encode() if isinstance(event, str) else event
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers=dict(headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # The emulator's own process group holds the runtime too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.process = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    print(emulator_path())
