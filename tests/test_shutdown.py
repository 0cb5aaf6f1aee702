"""Graceful shutdown (runtime/shutdown.py): the callbacks' run-once guard, the
opt-in, the Extensions API requests, and SIGTERM under the official emulator,
from source and as the built static bootstrap (its /tmp left clean)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, WriteModule, build

from build.rie import Emulator
from runtime import shutdown
from runtime.shutdown import ShutdownCallbacks

# --- the callbacks ---------------------------------------------------------------


def test_callbacks_run_once_in_order_past_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []
    callbacks = ShutdownCallbacks()
    callbacks.add(lambda: ran.append("first"))

    def broken() -> None:
        raise OSError("pool already closed")

    callbacks.add(broken)
    callbacks.add(lambda: ran.append("third"))
    assert callbacks.run_once() is True
    assert callbacks.run_once() is False
    assert ran == ["first", "third"]
    assert (
        "shutdown callback test_callbacks_run_once_in_order_past_a_failure.<locals>.broken "
        "failed: OSError: pool already closed" in capsys.readouterr().err
    )


def test_callbacks_run_once_across_threads() -> None:
    count: list[int] = []
    callbacks = ShutdownCallbacks()
    callbacks.add(lambda: count.append(1))
    threads = [threading.Thread(target=callbacks.run_once) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count == [1]


@pytest.fixture
def no_callbacks(monkeypatch: pytest.MonkeyPatch) -> ShutdownCallbacks:
    fresh = ShutdownCallbacks()
    monkeypatch.setattr(shutdown, "callbacks", fresh)
    return fresh


def test_opt_in(no_callbacks: ShutdownCallbacks) -> None:
    assert not shutdown.requested({})
    assert shutdown.requested({"STATICLAMBDA_GRACEFUL_SHUTDOWN": "1"})
    shutdown.on_shutdown(lambda: None)  # a registered callback opts in...
    assert shutdown.requested({})
    assert not shutdown.requested({"STATICLAMBDA_GRACEFUL_SHUTDOWN": "0"})  # ...unless told not to


# --- the Extensions API requests -------------------------------------------------------


class FakeExtensionsAPI(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, str], bytes]]
    next_called: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Lambda-Extension-Identifier", "ext-1")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self.requests.append((self.command, self.path, dict(self.headers.items()), b""))
        self.next_called.set()
        # No event is ever subscribed: /event/next does not answer.
        threading.Event().wait(30)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def extensions_api() -> Iterator[tuple[str, type[FakeExtensionsAPI]]]:
    handler = type(
        "Handler", (FakeExtensionsAPI,), {"requests": [], "next_called": threading.Event()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_install_registers_an_internal_extension_with_no_event(
    extensions_api: tuple[str, type[FakeExtensionsAPI]],
    no_callbacks: ShutdownCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import signal

    address, api = extensions_api
    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # not this process's
    assert shutdown.install(address, {"STATICLAMBDA_GRACEFUL_SHUTDOWN": "1"}) is True
    assert api.next_called.wait(5)
    (register, next_event) = api.requests
    assert register[:2] == ("POST", "/2020-01-01/extension/register")
    assert register[2]["Lambda-Extension-Name"] == "staticlambda-graceful-shutdown"
    assert json.loads(register[3]) == {"events": []}
    assert next_event[:2] == ("GET", "/2020-01-01/extension/event/next")
    assert next_event[2]["Lambda-Extension-Identifier"] == "ext-1"


def test_a_failed_registration_is_not_fatal(
    no_callbacks: ShutdownCallbacks, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shutdown.install("127.0.0.1:1", {"STATICLAMBDA_GRACEFUL_SHUTDOWN": "1"}) is False
    assert "graceful shutdown is off: the extension did not register" in capsys.readouterr().err


# --- SIGTERM under the official emulator ---------------------------------------------

APP = """\
import os
from runtime.shutdown import on_shutdown


@on_shutdown
def write_marker():
    with open(os.environ["MARKER"], "a") as f:
        f.write(f"ran in {os.getpid()}\\n")


def handler(event, context):
    return "ok"
"""


def stop_and_read(rie: Emulator, marker: Path) -> list[str]:
    # SIGTERM to the emulator's whole process group: the emulator, which passes it
    # on, and the runtime itself, signalled directly too.
    rie.stop()
    return marker.read_text().splitlines() if marker.exists() else []


@pytest.mark.rie
def test_sigterm_runs_the_callbacks_once_from_source(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("shutdown_app", APP)
    marker = tmp_path / "marker"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{ROOT}:{tmp_path}", "MARKER": str(marker)}
    rie = Emulator([sys.executable, "-m", "runtime", "shutdown_app.handler"], env=env, cwd=tmp_path)
    with rie:
        assert rie.invoke("{}") == (200, b'"ok"')
        lines = stop_and_read(rie, marker)
    assert len(lines) == 1, lines
    log = rie.log()
    assert "Internal agent staticlambda-graceful-shutdown" in log
    assert "subscribed to []" in log
    assert "SIGTERM: running 1 shutdown callback(s)" in log


@pytest.fixture(scope="module")
def shutdown_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("shutdown-src")
    (src / "shutdown_app.py").write_text(APP)
    dist = tmp_path_factory.mktemp("shutdown-dist")
    built: Path = build(dist, "--handler", "shutdown_app.handler", "--src", str(src))
    return built


@pytest.mark.binary
@pytest.mark.rie
def test_sigterm_to_the_static_bootstrap_runs_the_callbacks_once_and_cleans_tmp(
    shutdown_dist: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    marker = tmp_path / "marker"
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "MARKER": str(marker)}
    rie = Emulator([str(shutdown_dist / "bootstrap")], env=env, cwd=shutdown_dist)
    with rie:
        assert rie.invoke("{}") == (200, b'"ok"')  # the emulator starts the runtime now
        during = sorted(p.name for p in tmp.iterdir())
        lines = stop_and_read(rie, marker)
    # One extraction directory: staticx's, with PyInstaller's onedir tree inside.
    assert len(during) == 1 and during[0].startswith("staticx-"), during
    assert len(lines) == 1, (lines, rie.log())
    assert "SIGTERM: running 1 shutdown callback(s)" in rie.log()
    assert list(tmp.iterdir()) == [], "the bootstrap left its extraction directories behind"
