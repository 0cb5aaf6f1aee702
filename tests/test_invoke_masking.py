"""`make invoke AWS_CREDENTIALS=1` (build/invoke.py) under the official emulator: the
credentials it passes to the function are masked in everything it prints, whatever the
function does with them."""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from pathlib import Path

import pytest
from support import ROOT

from build import invoke

pytestmark = pytest.mark.rie

KEY_ID = "AKIASTATICLAMBDAINV7"
SECRET = "inVoKe/sEcReT+staticlambda9Xw2"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx+invoke/Zq8vN3w=="

LEAKY = """
import base64, os

def handler(event, context):
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    print("secret:", secret)
    print("basic:", base64.b64encode(("me:" + secret).encode()).decode())
    print("token:", base64.encodebytes(os.environ["AWS_SESSION_TOKEN"].encode() * 2).decode())
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": secret}
"""


def test_the_credentials_invoke_passes_are_masked_in_what_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "leaky.py").write_text(LEAKY)
    bootstrap = tmp_path / "bootstrap"  # the runtime from source, as the function's bootstrap
    bootstrap.write_text(
        f"#!/bin/sh\nexport PYTHONPATH='{tmp_path}:{ROOT}'\n"
        f"exec '{sys.executable}' -m runtime leaky.handler\n"
    )
    bootstrap.chmod(0o755)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    logs_before = set(Path(tempfile.gettempdir()).glob("rie-*.log"))
    assert invoke.main(["--bootstrap", str(bootstrap), "--credentials"]) == 0
    # Nor is the emulator's log, which holds them as the function printed them, left behind.
    assert set(Path(tempfile.gettempdir()).glob("rie-*.log")) == logs_before
    out, err = capsys.readouterr()
    printed = out + err
    lines = out.splitlines()
    assert "secret: ****" in lines
    assert json.loads(lines[-1]) == {"key": "****", "secret": "****"}
    for value in (KEY_ID, SECRET, TOKEN):
        assert value not in printed
    assert base64.b64encode(f"me:{SECRET}".encode()).decode()[4:-4] not in printed
    unwrapped = printed.replace("\n", "")
    for pad in range(3):  # not 8 characters of the token's base64, at any alignment
        inner = base64.b64encode(b"\0" * pad + TOKEN.encode()).decode()[4:-4]
        assert not any(inner[i : i + 8] in unwrapped for i in range(len(inner) - 7))
