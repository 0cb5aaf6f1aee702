"""The function's environment at the init check and at `make invoke`: given on top of
Lambda's own variables, and an init that fails for want of a variable says, in its one
line, how to give it and that INIT_CHECK=0 skips the check (build/initcheck.py,
build/invoke.py). The real binary's side is in tests/test_function_environment.py."""

from __future__ import annotations

from pathlib import Path

from build import initcheck, invoke
from build.initcheck import Outcome, explain

# What the static bootstrap printed when `os.environ["CAR_TABLE_NAME"]` failed at import.
ENVIRON_TRACE = (
    "[ERROR] KeyError: 'CAR_TABLE_NAME'\n"
    "Traceback (most recent call last):\n"
    '  File "app.py", line 2, in <module>\n'
    '  File "<frozen os>", line 679, in __getitem__\n'
)


def failed(error_type: str, message: str, output: str = "") -> Outcome:
    return Outcome(error_type=error_type, error_message=message, output=output)


def test_a_key_error_from_os_environ_says_how_to_give_the_variable() -> None:
    line = explain(failed("KeyError", "'CAR_TABLE_NAME'", ENVIRON_TRACE), None, 120)
    assert line == (
        "KeyError: 'CAR_TABLE_NAME' -- the function reads the environment variable "
        "CAR_TABLE_NAME at init: give it with ENV_FILE=<dotenv file with CAR_TABLE_NAME=...> "
        'or ENV="CAR_TABLE_NAME=..."; INIT_CHECK=0 skips this check'
    )


def test_a_key_error_of_a_dict_is_hinted_at_not_blamed_on_the_environment() -> None:
    trace = '  File "app.py", line 3, in <module>\n'
    line = explain(failed("KeyError", "'region'", trace), None, 120)
    assert line.startswith("KeyError: 'region' -- if region is an environment variable the ")
    assert line.endswith("INIT_CHECK=0 skips this check")


def test_any_other_init_error_says_how_to_give_variables_and_how_to_skip() -> None:
    line = explain(
        failed("botocore.exceptions.NoRegionError", "You must specify a region."), None, 120
    )
    assert line == (
        "botocore.exceptions.NoRegionError: You must specify a region. -- if init needs "
        'environment variables, give them: ENV_FILE=<dotenv file> or ENV="NAME=value ..."; '
        "INIT_CHECK=0 skips this check"
    )
    exited = Outcome(exit_status=3, output="fatal: no config\n")
    assert explain(exited, None, 120).endswith(
        'ENV="NAME=value ..."; INIT_CHECK=0 skips this check'
    )
    multi = explain(failed("ValueError", "bad\nvalue"), None, 120)
    assert "\n" not in multi


def test_errors_of_the_code_keep_their_own_fix() -> None:
    line = explain(
        failed(
            "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'yaml'"
        ),
        Path("/fn/requirements.txt"),
        120,
    )
    assert line.endswith(
        "-- add the package that provides 'yaml' to REQUIREMENTS=/fn/requirements.txt"
    )
    assert "ENV_FILE" not in line
    missing = explain(
        failed("Runtime.HandlerNotFound", "Handler 'h' missing on module 'app'"), None, 9
    )
    assert "ENV_FILE" not in missing


def test_a_variable_given_is_not_blamed() -> None:
    outcome = failed("KeyError", "'TABLE_NAME'", ENVIRON_TRACE)
    line = explain(outcome, None, 120, {"TABLE_NAME": "cars"})
    assert "ENV_FILE=<dotenv file> or" in line and "give it with" not in line


def test_the_declared_environment_reaches_the_function_beside_lambdas() -> None:
    env = initcheck.function_env("127.0.0.1:9001", "app.handler", "/tmp", {"TABLE_NAME": "cars"})
    assert env["TABLE_NAME"] == "cars" and env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    env = invoke.function_env(
        {"AWS_REGION": "eu-west-1", "MINE": "x"},
        "30",
        "/tmp/t",
        "/dist",
        ["MINE"],
        False,
        False,
        {"TABLE_NAME": "cars", "MINE": "declared"},
    )
    assert env["TABLE_NAME"] == "cars" and env["AWS_REGION"] == "eu-west-1"
    assert env["MINE"] == "x", "PASS_ENV wins over the declared environment"
