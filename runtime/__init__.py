"""staticlambda's Lambda runtime: the Runtime API client, the invoke loop and
what a handler sees (its event and its context), compatible with AWS's Python
runtime (awslambdaric).

Modules, one job each:
    config      every environment variable the runtime reads, read once into Config
    headers     every header name of the Runtime and Extensions APIs, in one place
    transport   httpx's HTTP/1.1 transport without the TLS set-up plain HTTP never uses
    client      every request to Lambda: next, response (buffered or streamed),
                error, init error, extension registration; one status check
    _streaming_http  a streamed response on the wire (h11), for the client, imported lazily
    context     the LambdaContext a handler receives
    errors      the error hierarchy, the error payload Lambda expects, the X-Ray cause
    handler     `module.function` to a callable, at init
    marshal     event bytes to Python and results back to bytes
    logs        handler output to the log stream (Text or JSON), with the request id;
                the runtime's own lines in the format and level in force
    logsink     stdout and stderr: written through, or whole lines from every worker
    deadline    the soft deadline: where the handler is, shortly before a timeout
    loop        the invoke loop: next, context, handler, send, report
    streaming   what a streaming handler sees: ResponseStream, HttpResponse
    shutdown    graceful shutdown callbacks on SIGTERM (imported only when opted in)
    workers     Lambda Managed Instances: N invokes at once by workers forked after init
    inittrace   how long each init phase took (STATICLAMBDA_INIT_TRACE=1)
    frozen      what only the static bootstrap does at start (CA bundle, /tmp sweep)
    __main__    the thin entry point that wires these together

Importing this package imports nothing else: the frozen bootstrap pays only for
what it uses before the first `/next`.
"""
