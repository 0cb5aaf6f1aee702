"""staticlambda's Lambda runtime: the Runtime API client, the invoke loop and
what a handler sees (its event and its context), compatible with AWS's Python
runtime (awslambdaric).

Modules, one job each:
    config      what the execution environment tells the runtime (read once)
    headers     every Runtime API header name, in one place
    client      the Runtime API over HTTP (httpx): next, response, error, init error
    context     the LambdaContext a handler receives
    errors      the error hierarchy and the error payload Lambda expects
    handler     `module.function` to a callable, at init
    marshal     event bytes to Python and results back to bytes
    logs        handler output to the log stream, with the request id
    loop        the invoke loop: next, run the handler, report
    __main__    the thin entry point that wires these together

Importing this package imports nothing else: the frozen bootstrap pays only for
what it uses before the first `/next`.
"""
