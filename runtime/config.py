"""What the execution environment tells the runtime, read once at init.

The environment is passed in (``Config.from_env(os.environ)``) rather than read
at import time, so tests hand in a plain dict and nothing leaks between them.
Every variable the runtime reads is named here, with its one reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.errors import ConfigError

API_VERSION = "2018-06-01"
DEFAULT_SOFT_DEADLINE_MARGIN_MS = 500
SOFT_DEADLINE_ENV = "STATICLAMBDA_SOFT_DEADLINE_MS"
INIT_TRACE_ENV = "STATICLAMBDA_INIT_TRACE"
GRACEFUL_SHUTDOWN_ENV = "STATICLAMBDA_GRACEFUL_SHUTDOWN"
# Lambda Managed Instances: how many invokes one execution environment serves at once.
MAX_CONCURRENCY_ENV = "AWS_LAMBDA_MAX_CONCURRENCY"
# Lambda Managed Instances: the unix socket each worker connects its stdout and
# stderr to (runtime/logsink.py).
LOG_SOCKET_ENV = "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"
# Written, not read: the variable the X-Ray SDK reads the current trace from,
# which the loop sets for each invoke.
TRACE_ENV = "_X_AMZN_TRACE_ID"

_OFF = ("0", "false", "no")


@dataclass(frozen=True)
class Config:
    runtime_api: str  # host:port of the Runtime API, from AWS_LAMBDA_RUNTIME_API
    handler: str  # `module.function`
    function_name: str | None = None
    function_version: str | None = None
    memory_limit_in_mb: str | None = None  # a string, as in awslambdaric
    log_group_name: str | None = None
    log_stream_name: str | None = None
    # Lambda's advanced logging controls: "Text" (default) or "JSON", and a level.
    log_format: str = "Text"
    log_level: str | None = None
    # How long before the deadline the runtime logs where the handler is; 0: never.
    soft_deadline_margin_ms: int = DEFAULT_SOFT_DEADLINE_MARGIN_MS
    # Log how long each init phase took.
    init_trace: bool = False
    # Graceful shutdown (runtime/shutdown.py): on, off, or None: on only if a
    # handler module registered a callback.
    graceful_shutdown: bool | None = None
    # Invokes served at once (Lambda Managed Instances); above 1, by as many
    # worker processes forked after init (runtime/workers.py).
    max_concurrency: int = 1
    # Managed Instances' log socket, if the platform gives one.
    log_socket: str | None = None

    @property
    def json_logs(self) -> bool:
        return is_json(self.log_format)

    @property
    def base_url(self) -> str:
        return f"http://{self.runtime_api}/{API_VERSION}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], handler: str | None = None) -> Config:
        """``handler`` (the command line argument) wins over ``_HANDLER``."""
        runtime_api = environ.get("AWS_LAMBDA_RUNTIME_API", "").strip()
        if not runtime_api:
            raise ConfigError(
                "AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda runtime; run it "
                "inside Lambda or under the Runtime Interface Emulator (`make invoke`)"
            )
        name = handler or environ.get("_HANDLER", "")
        if not name:
            raise ConfigError("no handler: give `module.function` as the argument or set _HANDLER")
        log_format, log_level = log_controls(environ)
        return cls(
            runtime_api=runtime_api,
            handler=name,
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            function_version=environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_limit_in_mb=environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            log_group_name=environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream_name=environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            log_format=log_format,
            log_level=log_level,
            soft_deadline_margin_ms=_margin_ms(environ.get(SOFT_DEADLINE_ENV)),
            init_trace=init_trace_enabled(environ),
            graceful_shutdown=graceful_shutdown_setting(environ),
            max_concurrency=_max_concurrency(environ.get(MAX_CONCURRENCY_ENV)),
            log_socket=environ.get(LOG_SOCKET_ENV) or None,
        )


def is_json(log_format: str) -> bool:
    return log_format.upper() == "JSON"


def log_controls(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """``AWS_LAMBDA_LOG_FORMAT`` and ``AWS_LAMBDA_LOG_LEVEL`` (read on their own
    too, so that even a configuration error is logged in the format in force)."""
    return (
        environ.get("AWS_LAMBDA_LOG_FORMAT") or "Text",
        environ.get("AWS_LAMBDA_LOG_LEVEL") or None,
    )


def init_trace_enabled(environ: Mapping[str, str]) -> bool:
    """The debug switch that logs how long each init phase took (read on its
    own too, by the frozen bootstrap, before there is a Config)."""
    return environ.get(INIT_TRACE_ENV, "").lower() not in ("", *_OFF)


def graceful_shutdown_setting(environ: Mapping[str, str]) -> bool | None:
    """STATICLAMBDA_GRACEFUL_SHUTDOWN: 0/false/no is off, any other value on,
    unset (or empty) None: left to whether a callback was registered."""
    value = environ.get(GRACEFUL_SHUTDOWN_ENV, "").strip().lower()
    if not value:
        return None
    return value not in _OFF


def _margin_ms(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_SOFT_DEADLINE_MARGIN_MS
    try:
        margin = int(value)
    except ValueError:
        raise ConfigError(
            f"{SOFT_DEADLINE_ENV}={value!r} is not a whole number of milliseconds (0 turns it off)"
        ) from None
    if margin < 0:
        raise ConfigError(f"{SOFT_DEADLINE_ENV}={value!r} is negative (0 turns it off)")
    return margin


def _max_concurrency(value: str | None) -> int:
    """Unset or empty: 1, one invoke at a time (Lambda's default environments)."""
    if value is None or not value.strip():
        return 1
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(
            f"{MAX_CONCURRENCY_ENV}={value!r} is not a whole number of invokes (1 or more)"
        ) from None
    if count < 1:
        raise ConfigError(f"{MAX_CONCURRENCY_ENV}={value!r} is below 1 (1 serves one at a time)")
    return count
