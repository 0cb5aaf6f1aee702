"""`make remote-invoke`: invoke the deployed function once and show what came back.

    payload     the function's response, to stdout, as Lambda returned it
    error       X-Amz-Function-Error (Unhandled, Handled) when the function failed
    log tail    the last 4 KB of its log (LogType=Tail), base64-decoded, to stderr

    python -m build.remote_invoke --function NAME [--event JSON] [--region REGION]

Exit status: 0 the function answered, 1 it failed or AWS did, 2 usage error. Endpoints,
credentials and region are found as for deploy (build/aws.py).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from build.aws import Aws, Console, Parser, run_cli
from build.aws_errors import UsageError


def parser() -> Parser:
    p = Parser(
        prog="python -m build.remote_invoke",
        description="Invoke a deployed Lambda function once (RequestResponse, LogType=Tail).",
        epilog="Exit status: 0 the function answered, 1 it failed or AWS did, 2 usage error.",
    )
    p.add_argument("--function", "-f", metavar="NAME", help="the function's name (make: FUNCTION=)")
    p.add_argument("--event", default="{}", help="the event, JSON (make: EVENT=; default {})")
    p.add_argument("--qualifier", metavar="VERSION_OR_ALIAS", help="a version or alias to invoke")
    p.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    p.add_argument("--debug", action="store_true", help="print each AWS call (never credentials)")
    return p


def decode_log(log_result: str | None) -> str | None:
    if not log_result:
        return None
    try:
        return base64.b64decode(log_result).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None


def show(response: Mapping[str, Any], payload: bytes, console: Console, out: TextIO) -> int:
    """Print what an Invoke answered; the exit status says whether the function failed."""
    print(console.redact(payload.decode("utf-8", errors="replace")), file=out, flush=True)
    function_error = response.get("FunctionError")
    if function_error:
        console.error(f"the function failed ({function_error}); its answer is above")
    log = decode_log(response.get("LogResult"))
    if log is None:
        console.notice("Lambda returned no log tail")
    else:
        # The last 4 KB of the log: its first line may start inside a secret.
        shown = console.redact_cut(log.rstrip())
        print(f"--- log tail ---\n{shown}", file=console.err, flush=True)
    return 1 if function_error else 0


def run(args: argparse.Namespace, console: Console, out: TextIO) -> int:
    if not args.function:
        raise UsageError("no function name: make remote-invoke FUNCTION=<name> (--function NAME)")
    try:
        json.loads(args.event)
    except ValueError as e:
        raise UsageError(f"EVENT is not JSON: {e}") from None
    aws = Aws.open(args.region, console)
    client = aws.client("lambda")
    params: dict[str, Any] = {
        "FunctionName": args.function,
        "InvocationType": "RequestResponse",
        "LogType": "Tail",
        "Payload": args.event.encode("utf-8"),
    }
    if args.qualifier:
        params["Qualifier"] = args.qualifier
    start = time.monotonic()
    response = client.invoke(**params)
    payload: bytes = response["Payload"].read()
    console.info(
        f"{args.function} answered HTTP {response.get('StatusCode')} in "
        f"{time.monotonic() - start:.2f} s (version {response.get('ExecutedVersion', '-')})"
    )
    return show(response, payload, console, out)


def main(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    # Every message goes to stderr: stdout holds the payload alone, for pipes.
    console = Console(err or sys.stderr, err or sys.stderr, prog="remote-invoke")
    return run_cli(
        console,
        os.environ if environ is None else environ,
        lambda: parser().parse_args(argv),
        lambda args: run(args, console, out or sys.stdout),
    )


if __name__ == "__main__":
    sys.exit(main())
