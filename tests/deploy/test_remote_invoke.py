"""`make remote-invoke` (build/remote_invoke.py) against moto in server mode."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
from pathlib import Path

from deploy_support import (
    KEY_ID,
    SECRET,
    TOKEN,
    Hook,
    answer_instead,
    assert_no_secret,
    make_role,
    make_zip,
    run_deploy,
    run_invoke,
)
from support import MotoServer


def test_remote_invoke_prints_the_payload(aws: MotoServer, tmp_path: Path) -> None:
    assert (
        run_deploy("--function", "hello", "--role", make_role(), zip_path=make_zip(tmp_path)).code
        == 0
    )
    result = run_invoke("--function", "hello", "--event", '{"text":"Hello"}')
    # moto without Docker answers with the event itself, and sends no log.
    assert (result.code, result.out) == (0, '{"text":"Hello"}\n')
    assert "hello answered HTTP 200" in result.err
    assert "remote-invoke: notice: Lambda returned no log tail" in result.err


def test_remote_invoke_shows_the_function_error_and_log_tail(
    aws: MotoServer, hooks: list[tuple[str, Hook]]
) -> None:
    log = "START RequestId: 1\nboom\nEND RequestId: 1\n"
    answer = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "ExecutedVersion": "$LATEST",
        "LogResult": base64.b64encode(log.encode()).decode(),
        "Payload": io.BytesIO(b'{"errorMessage": "boom", "errorType": "ValueError"}'),
    }
    hooks.append(("before-call.lambda.Invoke", answer_instead(answer, 200, times=1)))
    result = run_invoke("--function", "hello")
    assert result.code == 1
    assert result.out == '{"errorMessage": "boom", "errorType": "ValueError"}\n'
    assert "remote-invoke: error: the function failed (Unhandled)" in result.err
    assert "--- log tail ---\nSTART RequestId: 1\nboom\nEND RequestId: 1\n" in result.err


def test_remote_invoke_refuses_an_event_that_is_not_json(aws: MotoServer) -> None:
    result = run_invoke("--function", "hello", "--event", "{nope")
    assert result.code == 2 and result.err.startswith("remote-invoke: error: EVENT is not JSON")


def test_encoded_secrets_are_masked_in_what_remote_invoke_prints(
    aws: MotoServer, hooks: list[tuple[str, Hook]]
) -> None:
    # A function that echoes its environment back, in the forms programs write it.
    escaped = json.dumps({"secret": SECRET}).replace("/", "\\/")
    url = "https://example.test/cb?" + urllib.parse.urlencode({"key": KEY_ID, "token": TOKEN})
    basic = base64.b64encode(f"deploy:{SECRET}".encode()).decode()
    payload = json.dumps({"env": escaped, "url": url, "hex": TOKEN.encode().hex()})
    log = f"START RequestId: 1\nAuthorization: Basic {basic}\nEND RequestId: 1\n"
    answer = {
        "StatusCode": 200,
        "LogResult": base64.b64encode(log.encode()).decode(),
        "Payload": io.BytesIO(payload.encode()),
    }
    hooks.append(("before-call.lambda.Invoke", answer_instead(answer, 200, times=1)))
    result = run_invoke("--function", "hello")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert json.loads(shown["env"]) == {"secret": "****"}
    assert shown["url"] == "https://example.test/cb?key=****&token=****"
    assert shown["hex"] == "****"
    (line,) = [x for x in result.err.splitlines() if x.startswith("Authorization: Basic ")]
    assert "****" in line and basic not in line
    assert_no_secret(result.out, result.err)


def test_a_secret_cut_by_the_log_tail_or_wrapped_in_base64_is_masked(
    aws: MotoServer, hooks: list[tuple[str, Hook]]
) -> None:
    # The tail is the last 4 KB of the log: here it starts 9 characters into the secret
    # the function printed, and holds the session token as MIME writes base64 (wrapped).
    wrapped = base64.encodebytes(f"token={TOKEN};".encode() * 3).decode()
    log = f"{SECRET[9:]}\n{wrapped}END RequestId: 1\nREPORT RequestId: 1\n"
    answer = {
        "StatusCode": 200,
        "LogResult": base64.b64encode(log.encode()).decode(),
        "Payload": io.BytesIO(b"{}"),
    }
    hooks.append(("before-call.lambda.Invoke", answer_instead(answer, 200, times=1)))
    result = run_invoke("--function", "hello")
    assert result.code == 0, result.err
    tail = result.err.split("--- log tail ---\n", 1)[1].splitlines()
    assert tail[0] == "****"
    assert tail[-2:] == ["END RequestId: 1", "REPORT RequestId: 1"]
    unwrapped = "".join(tail[1:-2])
    assert "****" in unwrapped
    for pad in range(3):  # not 8 characters of the token's base64, at any alignment
        inner = base64.b64encode(b"\0" * pad + TOKEN.encode()).decode()[4:-4]
        assert not any(inner[i : i + 8] in unwrapped for i in range(len(inner) - 7))
    assert_no_secret(result.out, result.err)
    assert SECRET[9:] not in result.err
