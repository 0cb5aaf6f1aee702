"""Stage 4, init check: the built binary is started once, and must initialise.

A handler that cannot be imported (a missing dependency, a misspelled
function, an exception at import) used to build cleanly and fail only when
invoked. Here the binary runs against a tiny Runtime API of the build's own,
which waits for one of two things: the runtime asks for its first event
(GET .../invocation/next: init succeeded, the handler exists), or it posts an
init error (POST .../init/error: the build stops with Lambda's own error type
and message). No event is ever given, so the handler itself never runs.

As root, the binary runs as Lambda runs it: in an empty root (only the binary,
/tmp, /proc, /dev/null), as an unprivileged user, in a network namespace of
its own where only this Runtime API answers (unshare --net --mount, chroot).
Without root it runs on this machine as it is, and the build says what it
could not isolate. Init code that needs the network (or AWS) fails the check
in the empty root: `INIT_CHECK=0` (`--no-init-check`) skips it.

The function's environment (ENV_FILE, ENV: build/function_env.py) is given to the
binary on top of Lambda's own variables, as Lambda gives it. Init code that reads a
variable it was not given fails the check, and the error says how to give it.

    python -m build.initcheck --inside BOOTSTRAP HANDLER TIMEOUT   (run by unshare; internal;
                                                                    the environment on stdin)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from build.errors import BuildError
from build.paths import ROOT
from build.runtime_api import INIT_ERROR, NEXT, LocalRuntimeAPI, RuntimeAPIHandler

LAMBDA_UID = "993:990"  # an unprivileged user, as Lambda runs bootstrap
DEFAULT_TIMEOUT = 120.0  # Lambda gives init 10 s; a loaded build machine is slower


@dataclass
class Outcome:
    """What the runtime told the Runtime API, or how it ended without telling."""

    reached_next: bool = False
    error_type: str = ""
    error_message: str = ""
    exit_status: int | None = None
    output: str = ""
    init_ms: float = 0.0

    @property
    def decided(self) -> bool:
        return self.reached_next or bool(self.error_type)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls(**json.loads(text))


class _RuntimeAPI(RuntimeAPIHandler):
    """Records the runtime's first word; never hands out an event."""

    outcome: Outcome
    decided: threading.Event

    def do_GET(self) -> None:
        if self.path == NEXT:
            self.outcome.reached_next = True
            self.decided.set()
            # No event: hold the request until the process is stopped.
            time.sleep(DEFAULT_TIMEOUT)
            return
        self.send_error(404)

    def do_POST(self) -> None:
        body = self.read_body()
        if self.path == INIT_ERROR:
            try:
                error = json.loads(body)
            except ValueError:
                error = {}
            self.outcome.error_type = str(
                error.get("errorType") or self.headers.get("Lambda-Runtime-Function-Error-Type")
            )
            self.outcome.error_message = str(error.get("errorMessage", ""))
            self.decided.set()
        self.answer(202)


def function_env(
    runtime_api: str, handler: str, tmpdir: str, declared: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What Lambda sets, and the function's own ``declared`` variables (never a name Lambda
    reserves: build/function_env.py refuses those); nothing of the build machine's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "TMPDIR": tmpdir,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "init-check",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        **(declared or {}),
    }


def run_once(
    command: list[str],
    handler: str,
    tmpdir: str,
    timeout: float,
    declared: Mapping[str, str] | None = None,
) -> Outcome:
    """Start ``command`` against our Runtime API; stop it once it has decided."""
    outcome = Outcome()
    decided = threading.Event()
    answering = type("RuntimeAPI", (_RuntimeAPI,), {"outcome": outcome, "decided": decided})
    server = LocalRuntimeAPI(answering)
    env = function_env(server.address, handler, tmpdir, declared)
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = started + timeout
        while not decided.is_set() and process.poll() is None and time.monotonic() < deadline:
            decided.wait(0.05)
        outcome.init_ms = (time.monotonic() - started) * 1000
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        outcome.exit_status = process.wait()
        log.seek(0)
        outcome.output = log.read().decode(errors="replace")
    server.close()
    return outcome


def loopback_up() -> None:
    """A new network namespace's `lo` is down: bring it up (SIOCSIFFLAGS)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def run_in_empty_root(
    bootstrap: Path, handler: str, timeout: float, declared: Mapping[str, str]
) -> Outcome:
    """Inside `unshare --net --mount`: our mounts and network end with us."""
    loopback_up()
    with tempfile.TemporaryDirectory(prefix="staticlambda-root-") as base:
        root = Path(base)
        mount("-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", str(root))
        try:
            return run_chrooted(root, bootstrap, handler, timeout, declared)
        finally:
            subprocess.run(["umount", "--recursive", "--lazy", str(root)], check=False)


def run_chrooted(
    root: Path, bootstrap: Path, handler: str, timeout: float, declared: Mapping[str, str]
) -> Outcome:
    """The empty root in ``root`` (a tmpfs), the binary run there as Lambda's user."""
    for folder in ("var/task", "tmp", "proc", "dev"):
        (root / folder).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    (root / "var/task/bootstrap").touch()
    (root / "dev/null").touch()
    mount("--bind", str(bootstrap), str(root / "var/task/bootstrap"))
    mount("-o", "remount,ro,bind", str(root / "var/task/bootstrap"))
    mount("--bind", "/dev/null", str(root / "dev/null"))
    mount("-t", "proc", "proc", str(root / "proc"))
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    command = [chroot, f"--userspec={LAMBDA_UID}", str(root), "/var/task/bootstrap"]
    return run_once(command, handler, "/tmp", timeout, declared)


def isolation() -> str | None:
    """None when the empty root can be made here; else why not."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("unshare") is None:
        return "no unshare(1) on PATH"
    return None


def check_init(
    bootstrap: Path,
    handler: str,
    timeout: float = DEFAULT_TIMEOUT,
    declared: Mapping[str, str] | None = None,
) -> Outcome:
    why_not = isolation()
    if why_not is None:
        ran = subprocess.run(
            [
                "unshare",
                "--net",
                "--mount",
                "--propagation",
                "private",
                sys.executable,
                "-m",
                "build.initcheck",
                "--inside",
                str(bootstrap),
                handler,
                str(timeout),
            ],
            cwd=ROOT,
            # On stdin, not the command line: values may be secrets, and argv is public.
            input=json.dumps(dict(declared or {})),
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode == 0 and ran.stdout.strip():
            print("    init check: in an empty root, as an unprivileged user, with no network")
            return Outcome.from_json(ran.stdout.strip().splitlines()[-1])
        # Root without the right to unshare or mount (an unprivileged container):
        # say so, and check init without the isolation rather than not at all.
        said = (ran.stderr.strip().splitlines() or [f"exit status {ran.returncode}"])[-1]
        why_not = f"the empty root could not be made ({said})"
    print(
        f"    init check: {why_not}, so NOT in an empty root and WITH this machine's network "
        "and files (chroot, mount and unshare need root)"
    )
    with tempfile.TemporaryDirectory(prefix="staticlambda-init-") as tmpdir:
        return run_once([str(bootstrap)], handler, tmpdir, timeout, declared)


def missing_module(message: str) -> str | None:
    marker = "No module named '"
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split("'", 1)[0]


# Init errors that no environment variable causes: the fix is in the code.
CODE_ERRORS = (
    "Runtime.ImportModuleError",
    "Runtime.UserCodeSyntaxError",
    "Runtime.HandlerNotFound",
    "Runtime.MalformedHandlerName",
    "Runtime.BuiltInModuleConflict",
)
ENVIRONMENT_HINT = (
    "if init needs environment variables, give them: ENV_FILE=<dotenv file> or "
    'ENV="NAME=value ..."; INIT_CHECK=0 skips this check'
)
# KeyError's message is the key's repr: 'TABLE_NAME'.
KEY = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)'$")
# The traceback's last frame when os.environ[...] raised it (frozen or not).
ENVIRON_FRAME = re.compile(r'File "(<frozen os>|[^"]*/os\.py)", line \d+, in __getitem__\s*$')


def environment_hint(outcome: Outcome, declared: Mapping[str, str]) -> str:
    """How to give what init code looked for in the environment, and how to skip the check."""
    key = KEY.match(outcome.error_message.strip())
    if outcome.error_type == "KeyError" and key and key.group(1) not in declared:
        name = key.group(1)
        frames = [line for line in outcome.output.splitlines() if 'File "' in line]
        environ = bool(frames) and ENVIRON_FRAME.search(frames[-1]) is not None
        said = (
            f"the function reads the environment variable {name} at init"
            if environ
            else f"if {name} is an environment variable the function reads at init"
        )
        return (
            f" -- {said}: give it with ENV_FILE=<dotenv file with {name}=...> or "
            f'ENV="{name}=..."; INIT_CHECK=0 skips this check'
        )
    return f" -- {ENVIRONMENT_HINT}"


def explain(
    outcome: Outcome,
    requirements: Path | None,
    timeout: float,
    declared: Mapping[str, str] | None = None,
) -> str:
    """The build's one-line error for an init that failed."""
    if outcome.error_type:
        line = " ".join(f"{outcome.error_type}: {outcome.error_message}".split())
        module = missing_module(outcome.error_message)
        if outcome.error_type == "Runtime.ImportModuleError" and module:
            top = module.split(".")[0]
            if requirements is not None:
                line += f" -- add the package that provides '{top}' to REQUIREMENTS={requirements}"
            else:
                line += (
                    f" -- '{top}' is not bundled: list it in a requirements file (REQUIREMENTS=)"
                )
        elif outcome.error_type not in CODE_ERRORS:
            line += environment_hint(outcome, declared or {})
        return line
    if outcome.exit_status is not None and not outcome.reached_next and outcome.exit_status != -9:
        last = (outcome.output.strip().splitlines() or ["no output"])[-1]
        return (
            f"the bootstrap exited with status {outcome.exit_status} before its init ended: {last}"
            f" -- {ENVIRONMENT_HINT}"
        )
    return (
        f"the bootstrap did not finish its init within {timeout:.0f} s "
        "(init code that waits on the network? INIT_CHECK=0 skips this check)"
    )


def verify_init(
    bootstrap: Path,
    handler: str,
    requirements: Path | None,
    timeout: float = DEFAULT_TIMEOUT,
    declared: Mapping[str, str] | None = None,
) -> Outcome:
    outcome = check_init(bootstrap, handler, timeout, declared)
    if outcome.reached_next:
        print(f"    init ok: the runtime asked for its first event after {outcome.init_ms:.0f} ms")
        return outcome
    for line in outcome.output.rstrip().splitlines()[-20:]:
        print(f"    | {line}")
    raise BuildError(explain(outcome, requirements, timeout, declared))


def main(argv: list[str]) -> int:
    if argv[:1] != ["--inside"] or len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    declared = json.loads(sys.stdin.read() or "{}")
    outcome = run_in_empty_root(Path(argv[1]), argv[2], float(argv[3]), declared)
    print(outcome.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
