"""runtime/config.py: every setting the runtime reads from the environment,
read once from the mapping it is given (Config.from_env), with a one-line
error for what is missing."""

from __future__ import annotations

import os

import pytest
from samples import LAMBDA_ENV

from runtime.config import Config, graceful_shutdown_setting
from runtime.errors import ConfigError

# --- the Lambda variables -------------------------------------------------------------------


def test_config_reads_every_lambda_variable() -> None:
    config = Config.from_env(LAMBDA_ENV)
    assert config == Config(
        runtime_api="127.0.0.1:9001",
        handler="app.handler",
        function_name="orders",
        function_version="7",
        memory_limit_in_mb="512",
        log_group_name="/aws/lambda/orders",
        log_stream_name="2026/11/26/[7]abc",
    )
    assert config.base_url == "http://127.0.0.1:9001/2018-06-01"


def test_config_handler_argument_wins_over_handler_variable() -> None:
    assert Config.from_env(LAMBDA_ENV, handler="other.fn").handler == "other.fn"


def test_config_without_runtime_api_says_what_is_missing() -> None:
    env = {k: v for k, v in LAMBDA_ENV.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    with pytest.raises(ConfigError, match=r"^AWS_LAMBDA_RUNTIME_API is not set: ") as e:
        Config.from_env(env)
    assert "\n" not in str(e.value)


def test_config_without_any_handler_says_so() -> None:
    with pytest.raises(ConfigError, match=r"^no handler: .*_HANDLER"):
        Config.from_env({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})


def test_config_reads_the_mapping_it_is_given_not_os_environ() -> None:
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "from-os-environ"
    config = Config.from_env({"AWS_LAMBDA_RUNTIME_API": "h:1", "_HANDLER": "m.f"})
    assert config.function_name is None


# --- Config: the opt-in settings ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "setting"),
    [(None, None), ("", None), ("1", True), ("yes", True), ("0", False), ("False", False)],
)
def test_graceful_shutdown_setting_has_one_rule(value: str | None, setting: bool | None) -> None:
    environ = {} if value is None else {"STATICLAMBDA_GRACEFUL_SHUTDOWN": value}
    assert graceful_shutdown_setting(environ) is setting
    env = {"AWS_LAMBDA_RUNTIME_API": "h:1", "_HANDLER": "m.f", **environ}
    assert Config.from_env(env).graceful_shutdown is setting


@pytest.mark.parametrize(("value", "on"), [(None, False), ("0", False), ("no", False), ("1", True)])
def test_init_trace_setting(value: str | None, on: bool) -> None:
    env = {"AWS_LAMBDA_RUNTIME_API": "h:1", "_HANDLER": "m.f"}
    if value is not None:
        env["STATICLAMBDA_INIT_TRACE"] = value
    assert Config.from_env(env).init_trace is on
