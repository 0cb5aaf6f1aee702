"""`make deploy` and what the build declared (build/deploy/cli.py, plan.py), against moto in
server mode: the function's environment as the build checked it (ENV_FILE, ENV), set on
create and changed on update only where it differs, printed by name and never by value;
the handler and the bootstrap's sha256 said; the default echo handler never deployed over
a function that runs another unless FORCE."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deploy_support import X86_64, configuration, elf_header, make_role, make_zip, run_deploy, sha
from support import MotoServer

from build.function_env import digest, write_environment
from build.record import Inputs, write_record

VALUE = "pa55-Wd-q8Zr-value"  # a distinctive value: it must never be printed


def built(
    dist: Path,
    environment: dict[str, str] | None,
    handler: str = "app.handler",
    body: bytes = b"v1",
    env_file: str = "",
) -> Path:
    """dist/ as `make zip` leaves it: the zip, the bootstrap in it, the record, and the
    environment the init check ran with (when the build was given one)."""
    zip_path = make_zip(dist, body=body, handler=handler)
    (dist / "bootstrap").write_bytes(elf_header(X86_64) + body)
    write_environment(dist, environment)
    write_record(dist, Inputs(handler, env_file=env_file), "x86_64", digest(environment))
    return zip_path


def variables() -> dict[str, str]:
    return dict((configuration().get("Environment") or {}).get("Variables") or {})


def api_calls(err: str) -> list[str]:
    return [line.split()[2] for line in err.splitlines() if " -> HTTP " in line]


def test_create_sets_the_environment_the_build_checked(aws: MotoServer, tmp_path: Path) -> None:
    environment = {"TABLE_NAME": VALUE, "GREETING": "hello"}
    zip_path = built(tmp_path, environment)
    result = run_deploy("--function", "hello", "--role", make_role(), "--debug", zip_path=zip_path)
    assert result.code == 0, result.err
    assert variables() == environment
    assert "Environment GREETING, TABLE_NAME" in result.out
    assert VALUE not in result.text


def test_update_changes_the_environment_only_where_it_differs(
    aws: MotoServer, tmp_path: Path
) -> None:
    first = built(tmp_path / "a", {"TABLE_NAME": VALUE, "GREETING": "hello"})
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=first).code == 0
    same = run_deploy("--function", "hello", "--debug", zip_path=first)
    assert same.code == 0, same.err
    assert "hello is up to date" in same.out
    assert "lambda.UpdateFunctionConfiguration" not in api_calls(same.err)

    second = built(tmp_path / "b", {"TABLE_NAME": VALUE + "2", "LOG_LEVEL": "DEBUG"})
    changed = run_deploy("--function", "hello", "--debug", zip_path=second)
    assert changed.code == 0, changed.err
    assert variables() == {"TABLE_NAME": VALUE + "2", "LOG_LEVEL": "DEBUG"}
    assert "Environment: add LOG_LEVEL; change TABLE_NAME; remove GREETING" in changed.out
    assert "lambda.UpdateFunctionConfiguration" in api_calls(changed.err)
    assert VALUE not in changed.text


def test_a_build_given_no_environment_leaves_the_functions_variables(
    aws: MotoServer, tmp_path: Path
) -> None:
    first = built(tmp_path / "a", {"TABLE_NAME": VALUE})
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=first).code == 0
    later = built(tmp_path / "b", None, body=b"v2")
    result = run_deploy("--function", "hello", "--debug", zip_path=later)
    assert result.code == 0, result.err
    assert variables() == {"TABLE_NAME": VALUE}
    assert "lambda.UpdateFunctionConfiguration" not in api_calls(result.err)


def test_deploy_says_the_handler_and_the_bootstraps_sha256(aws: MotoServer, tmp_path: Path) -> None:
    zip_path = built(tmp_path, None, handler="orders.handler")
    result = run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path)
    assert result.code == 0, result.err
    bootstrap_sha256 = hashlib.sha256(elf_header(X86_64) + b"v1").hexdigest()
    assert f"deploy: deploying handler orders.handler: bootstrap sha256 {bootstrap_sha256}" in (
        result.out
    )
    assert configuration()["Handler"] == "orders.handler"


def test_echo_is_not_deployed_over_a_function_that_runs_another_handler(
    aws: MotoServer, tmp_path: Path
) -> None:
    mine = built(tmp_path / "mine", None, handler="app.handler")
    assert run_deploy("--function", "hello", "--role", make_role(), zip_path=mine).code == 0
    echo = built(tmp_path / "echo", None, handler="handlers.echo.handler", body=b"echo")
    refused = run_deploy("--function", "hello", zip_path=echo)
    assert refused.code == 2
    assert refused.err == (
        "deploy: error: hello runs HANDLER=app.handler, but "
        f"{echo} is the default echo handler: build yours first (make zip "
        "HANDLER=app.handler SRC=<its folder>), or FORCE=1 to deploy echo over it\n"
    )
    assert configuration()["CodeSha256"] == sha(mine), "the function was changed"
    forced = run_deploy("--function", "hello", "--force", zip_path=echo)
    assert forced.code == 0, forced.err
    assert configuration()["Handler"] == "handlers.echo.handler"


def test_env_given_to_deploy_must_be_what_the_build_checked(
    aws: MotoServer, tmp_path: Path
) -> None:
    env_file = tmp_path / "fn.env"
    env_file.write_text(f"TABLE_NAME={VALUE}\n")
    zip_path = built(tmp_path / "dist", {"TABLE_NAME": VALUE}, env_file=str(env_file))
    role = make_role()
    other = tmp_path / "prod.env"
    other.write_text("TABLE_NAME=prod\n")
    result = run_deploy(
        "--function", "hello", "--role", role, "--env-file", str(other), zip_path=zip_path
    )
    assert result.code == 2
    assert "ENV_FILE/ENV differ from the environment" in result.err
    assert "run `make zip` with them first" in result.err
    same = run_deploy(
        "--function", "hello", "--role", role, "--env-file", str(env_file), zip_path=zip_path
    )
    assert same.code == 0, same.err
    # The build's ENV_FILE edited since: deploy says to zip again, and changes nothing.
    env_file.write_text("TABLE_NAME=edited\n")
    stale = run_deploy("--function", "hello", zip_path=zip_path)
    assert stale.code == 2
    assert f"ENV_FILE={env_file} changed since the build checked it" in stale.err
    assert variables() == {"TABLE_NAME": VALUE}
    assert VALUE not in result.text + same.text + stale.text


def test_a_zip_the_build_record_does_not_describe_is_refused(
    aws: MotoServer, tmp_path: Path
) -> None:
    zip_path = built(tmp_path, {"TABLE_NAME": VALUE})
    (tmp_path / "bootstrap").write_bytes(b"\x7fELF another build")
    write_record(tmp_path, Inputs("app.handler"), "x86_64", "")
    result = run_deploy("--function", "hello", "--role", make_role(), zip_path=zip_path)
    assert result.code == 1
    assert "holds another bootstrap than the last build" in result.err
