"""The deploy tests' fixtures: moto in server mode, in its own process, on a free 127.0.0.1
port (tests/support.py's MotoServer), started once for all of tests/deploy/, reset before
each test that asks for `aws`, stopped at the end. The commands reach it only through
AWS_ENDPOINT_URL* and fake credentials, as a user's local emulator would be reached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import KEY_ID, REGION, SECRET, TOKEN, Hook
from support import MotoServer

from build import deploy


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS setting from the machine; fake credentials; no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    # Without this, a search for credentials ends at 169.254.169.254.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(moto_server: MotoServer, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    return moto_server


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Hook]]:
    """botocore event handlers to register on every client the commands make."""
    registered: list[tuple[str, Hook]] = []
    original = deploy.Aws.client

    def with_hooks(self: deploy.Aws, service: str) -> Any:
        made = original(self, service)
        for event, handler in registered:
            made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(deploy.Aws, "client", with_hooks)
    return registered
