"""Helpers shared by several test files, one section each: the repository's
root, the runtime run as Lambda starts it (against the fake Runtime API or
under the official emulator), the build pipeline, and handlers that record
their calls. Fixtures live in conftest.py; what a fixture or a test calls
lives here, imported by name (`from support import ROOT, run_runtime`)."""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import FakeRuntimeAPI, Recorded

from build.rie import Emulator
from runtime.client import RuntimeAPIClient
from runtime.config import Config
from runtime.deadline import SoftDeadline
from runtime.handler import Handler
from runtime.logs import RequestIdFilter
from runtime.loop import InvokeLoop

ROOT = Path(__file__).resolve().parent.parent
# A user's function in a folder of its own, with a requirements file (aws-lambda-powertools).
USERFUNC = ROOT / "tests" / "fixtures" / "userfunc"

# The write_module fixture (conftest.py): write_module("fn", source) -> the file's path.
WriteModule = Callable[[str, str], Path]


# --- the runtime as a process -------------------------------------------------


def run_runtime(
    cwd: Path,
    *args: str,
    api: FakeRuntimeAPI | None = None,
    env: dict[str, str] | None = None,
    module: str = "runtime",
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> *args`` as Lambda starts a runtime, from ``cwd``
    (where user modules are); without PYTHONUNBUFFERED, so unbuffered output is
    the runtime's doing. ``module="awslambdaric"`` runs AWS's own runtime."""
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **(env or {})}
    if api is not None:
        environ["AWS_LAMBDA_RUNTIME_API"] = api.address
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        timeout=30,
        check=False,
    )
    # Decoded by hand: text mode would turn the \r inside a log event into \n.
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


@dataclass(frozen=True)
class Served:
    """What one runtime process wrote, and what the fake Runtime API received."""

    stdout: str
    stderr: str
    requests: list[Recorded]

    def posted(self, path: str) -> Recorded:
        [request] = [r for r in self.requests if r.path == path]
        return request


def serve(
    runtime: str,
    cwd: Path,
    handler: str,
    events: list[tuple[str, str]],
    env: dict[str, str] | None = None,
    event_headers: dict[str, str] | None = None,
    deadline_in_ms: int = 60_000,
) -> Served:
    """``python -m <runtime> <handler>`` on (request id, body) events until
    they run out (then /next answers 500 and the process ends). Each event's
    deadline is ``deadline_in_ms`` after /next serves it."""
    with FakeRuntimeAPI() as api:
        for request_id, body in events:
            api.add_event(body, request_id, event_headers, deadline_in_ms)
        done = run_runtime(cwd, handler, api=api, env=env, module=runtime)
    stdout = done.stdout
    if runtime == "awslambdaric":
        # Its C++ client's own line when /next fails at the end (not always at
        # a line's start: awslambdaric ends a logged traceback without a newline).
        stdout = re.sub(r"\[ERROR\] \[\d+\] LAMBDA_RUNTIME [^\n]*\n", "", stdout)
    return Served(stdout, done.stderr, api.requests)


def both(
    cwd: Path,
    handler: str,
    events: list[tuple[str, str]],
    env: dict[str, str] | None = None,
) -> tuple[Served, Served]:
    """This runtime, then awslambdaric, on the same events: (ours, theirs)."""
    ours = serve("runtime", cwd, handler, events, env)
    theirs = serve("awslambdaric", cwd, handler, events, env)
    return ours, theirs


# --- the invoke loop in this process ------------------------------------------


def run_loop(
    api: FakeRuntimeAPI,
    handler: Handler,
    invocations: int = 1,
    request_id_filter: RequestIdFilter | None = None,
    *,
    env: dict[str, str] | None = None,
    environ: MutableMapping[str, str] | None = None,
    soft_deadline: SoftDeadline | None = None,
) -> None:
    """The loop against ``api`` for ``invocations`` events: Config from ``env``
    (default: only the handler's name), the trace id written to ``environ``
    (default: a dict of its own, not os.environ)."""
    config = Config.from_env(
        {"_HANDLER": "app.handler", **(env or {}), "AWS_LAMBDA_RUNTIME_API": api.address}
    )
    client = RuntimeAPIClient(config.base_url)
    try:
        loop = InvokeLoop(
            client,
            handler,
            config,
            request_id_filter or RequestIdFilter(),
            environ={} if environ is None else environ,
            soft_deadline=soft_deadline,
        )
        loop.run(max_invocations=invocations)
    finally:
        client.close()


# --- the runtime from source under the official emulator ----------------------


def emulator(cwd: Path, handler: str, env: dict[str, str]) -> Emulator:
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return Emulator(
        [sys.executable, "-m", "runtime", handler], env=environ, cwd=cwd, log_path=cwd / "rie.log"
    )


def rie_log(rie: Emulator) -> str:
    """The emulator's log with the runtime's output in it, its \r kept as written."""
    return rie.log_path.read_bytes().decode(errors="replace")


# --- the build pipeline -------------------------------------------------------


def run_pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "build.pipeline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def build(dist: Path, *extra: str) -> Path:
    """``build`` then ``zip`` into ``dist``; fails the test with the pipeline's output."""
    built = run_pipeline("build", "--dist", str(dist), *extra)
    assert built.returncode == 0, built.stdout + built.stderr
    zipped = run_pipeline("zip", "--dist", str(dist))
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    return dist


def build_function(dist: Path, src: Path) -> Path:
    """``build`` a function folder laid out as a user's: app.handler and its requirements.txt."""
    return build(
        dist,
        "--handler",
        "app.handler",
        "--src",
        str(src),
        "--requirements",
        str(src / "requirements.txt"),
    )


# --- handlers -----------------------------------------------------------------


def echo(event: Any, context: Any) -> Any:
    return event


class Calls:
    """A handler that records what it was called with, then answers."""

    def __init__(self, answer: Any = None, raises: BaseException | None = None):
        self.events: list[Any] = []
        self.contexts: list[Any] = []
        self.trace_ids: list[str | None] = []
        self.answer = answer
        self.raises = raises

    def __call__(self, event: Any, context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        self.trace_ids.append(os.environ.get("_X_AMZN_TRACE_ID"))
        if self.raises is not None:
            raise self.raises
        return self.answer


def answering(*answers: Any) -> Callable[[Any, Any], Any]:
    """A handler that gives these answers, one an invoke: an exception is raised."""
    left = iter(answers)

    def handler(event: Any, context: Any) -> Any:
        answer = next(left)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return handler


# --- the logging app ------------------------------------------------------------
# The user code the app fixture (conftest.py) writes for the log, X-Ray, soft
# deadline and init-trace tests (test_logs, test_errors, test_deadline,
# test_inittrace), and how those tests read what it logged.

TEXT_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
JSON_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
# Distinctive, so that any piece of them in a log is found.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAQUOKKA7ZEBRA4242",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/okapiWALRUSsecret0000",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEPangolinSessionTokenXYZZY",
}

APP = """\
import logging
import os
import time

from lambda_orders import check

log = logging.getLogger("orders")
PRINTED = 'printed as is: {"not": "a record"}\\tand a tab'


def levels(event, context):
    print(PRINTED)
    log.debug("debug %s", event["n"])
    log.info("info %s", event["n"], extra={"order_id": event["n"], "tags": ["a", "b"]})
    log.warning("warning %s", event["n"])
    log.error("error %s", event["n"])
    log.critical("critical %s", event["n"])
    return "ok"


def logs_exception(event, context):
    try:
        divide(1, 0)
    except ZeroDivisionError:
        log.exception("caught it\\nover two lines")
    return "ok"


def divide(a, b):
    return a / b


def fail(event, context):
    check(event["order"])


def huge(event, context):
    raise ValueError("x" * event["n"])


def secretive(event, context):
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    log.debug("has credentials: %s", all(os.environ.get(name) for name in names))
    log.info("about to fail")
    raise PermissionError("refused\\nby policy")


def slow(event, context):
    return sleeping_past_the_deadline(event["seconds"])


def sleeping_past_the_deadline(seconds):
    time.sleep(seconds)
    return "slept"
"""

ORDERS = """\
def check(order):
    raise ValueError(f"cannot take order {order}\\nsecond line")
"""
PRINTED = 'printed as is: {"not": "a record"}\tand a tab'  # lambda_app's print


def records(stdout: str) -> list[dict[str, Any]]:
    """Every JSON log record on stdout, as a log query (Powertools, Logs
    Insights) sees them: one per line, other lines skipped."""
    return [json.loads(line) for line in stdout.split("\n") if line.startswith("{")]


def assert_recent_utc(timestamp: str) -> None:
    assert re.fullmatch(JSON_STAMP, timestamp), timestamp
    at = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(at - time.time()) < 60


def assert_no_credentials(*logs: str) -> None:
    for log in logs:
        for value in CREDENTIALS.values():
            assert value not in log
        for piece in ("QUOKKA", "WALRUS", "Pangolin"):
            assert piece.lower() not in log.lower()


# --- Debian tools ---------------------------------------------------------------------
# A tool a test needs from Debian is installed by the test set-up, once, where it can be
# (as root: CI runs as root on a fresh machine); elsewhere the test skips and says why.


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``, installing ``package`` with apt-get when it is missing;
    pytest.skip with the reason when that cannot be done."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(f"no {command}, and not root to install it: apt-get install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    # A fresh machine may have no package lists yet: update once, then try again.
    for attempt in (install, ["apt-get", "update", "-q"], install):
        try:
            ran = subprocess.run(
                attempt, env=env, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"no {command}: `{' '.join(attempt)}` could not run: {e}")
        if ran.returncode == 0 and attempt is install and shutil.which(command):
            print(f"installed {package} for the tests (apt-get)", file=sys.stderr)
            return str(shutil.which(command))
    last = (ran.stderr or ran.stdout).strip().splitlines()[-1:] or ["no output"]
    pytest.skip(f"no {command}: apt-get install {package} failed: {last[0]}")


# --- moto in server mode --------------------------------------------------------
# The AWS API over real HTTP for the deploy tests (tests/deploy/) and test_arm64.py.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """`python -m moto.server` in its own process: its state never leaks into this one."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # AWS's managed policies (AWSLambdaBasicExecutionRole) exist only when asked for.
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        # No Docker here: Invoke answers with the event instead of running the code.
        self.post("/moto-api/config", {"lambda": {"use_docker": False}})

    def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        urllib.request.urlopen(
            urllib.request.Request(self.url + path, data=data), timeout=10
        ).close()

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
