"""`python -m runtime [module.function]`: the entry point, from source and frozen.

It only wires things together: configuration from the environment, the
handler, the Runtime API client and the loop.
"""

from __future__ import annotations

import logging
import os
import sys

from runtime.client import RuntimeAPIClient
from runtime.config import Config, is_json, log_controls
from runtime.deadline import SoftDeadline
from runtime.errors import ConfigError, ErrorPayload, RuntimeAPIError
from runtime.handler import Handler, resolve_handler
from runtime.inittrace import InitTrace
from runtime.logs import (
    RequestIdFilter,
    log_error,
    log_runtime,
    setup_logging,
    setup_runtime_log,
    use_unbuffered_streams,
)
from runtime.logsink import connect_log_socket
from runtime.loop import InvokeLoop

USAGE = """usage: python -m runtime [module.function]

Runs a Lambda function's handler against the Lambda Runtime API named by
AWS_LAMBDA_RUNTIME_API. The handler comes from the argument, else from _HANDLER."""


def main(
    argv: list[str] | None = None,
    handler: Handler | None = None,
    init_trace: InitTrace | None = None,
) -> int:
    """Run the runtime; returns the process exit status.

    ``handler`` is given by a frozen bootstrap, whose handler is imported
    statically at build time; it then wins over the argument and ``_HANDLER``.
    """
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if len(args) > 1:
        print(
            f"staticlambda: expected at most one argument, got {len(args)}\n{USAGE}",
            file=sys.stderr,
        )
        return 2

    use_unbuffered_streams()
    log_format, log_level = log_controls(os.environ)
    setup_runtime_log(is_json(log_format), log_level)
    try:
        config = Config.from_env(os.environ, handler=args[0] if args else None)
    except ConfigError as e:
        log_runtime(str(e))
        return 2
    if config.log_socket and config.max_concurrency == 1:
        # Managed Instances, one invoke at a time: this process is the one
        # worker, connected as each is (runtime/logsink.py); forked workers
        # connect for themselves, and the parent keeps the stdout Lambda gave it.
        try:
            connect_log_socket(config.log_socket)
        except OSError as e:
            log_runtime(f"log socket {config.log_socket}: {e}; writing to stdout", logging.WARNING)
    request_id_filter = RequestIdFilter()
    setup_logging(request_id_filter, config.json_logs, config.log_level)
    trace = init_trace or InitTrace(config.init_trace)

    trace.mark("Runtime API client")
    client = RuntimeAPIClient(config.base_url)
    try:
        trace.mark(f"handler import: {config.handler}")
        if handler is None:
            try:
                handler = resolve_handler(config.handler)
            except Exception as e:
                error = ErrorPayload.from_exception(e)
                log_error(error, config.json_logs)
                client.post_init_error(error)
                return 1
        # Graceful shutdown (runtime/shutdown.py), imported only when opted in: by
        # the environment, or by a handler module that registered a callback.
        shutdown_wanted = config.graceful_shutdown
        if shutdown_wanted is None:
            shutdown_wanted = "runtime.shutdown" in sys.modules
        shutdown_on = False
        if shutdown_wanted:
            from runtime import shutdown

            shutdown_on = shutdown.install(config.runtime_api, os.environ)
        if config.max_concurrency > 1:
            # Lambda Managed Instances: initialised once, served by forked workers,
            # each with its own client; the parent's is closed before any fork.
            client.close()
            from runtime import workers

            trace.mark(f"fork of {config.max_concurrency} workers")
            trace.report()
            return workers.serve(config, handler, request_id_filter, shutdown_on)
        margin = config.soft_deadline_margin_ms
        soft_deadline = SoftDeadline(margin) if margin > 0 else None
        trace.mark("first /next")
        trace.report()
        InvokeLoop(client, handler, config, request_id_filter, soft_deadline=soft_deadline).run()
    except RuntimeAPIError as e:
        log_runtime(f"the Runtime API failed, exiting: {e}")
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
