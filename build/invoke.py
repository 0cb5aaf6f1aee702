"""`make invoke`: run a bootstrap once under the official Runtime Interface
Emulator, as Lambda would run it, and show what Lambda's log would show.

    python -m build.invoke [--bootstrap dist/bootstrap] [--event JSON | --event-file PATH]
                           [--init-trace] [--pass-env "NAME ..."] [--credentials]

The function gets Lambda's environment, not the developer's: PATH, LANG, TZ,
TMPDIR (a fresh folder, as each Lambda sandbox has its own /tmp), LAMBDA_TASK_ROOT
(the bootstrap's folder), the region
from the caller's AWS_REGION / AWS_DEFAULT_REGION (both set, as Lambda sets
both), and what the emulator adds (AWS_LAMBDA_FUNCTION_NAME, ...). No HOME, so
no ~/.aws; no credentials unless --credentials (make: AWS_CREDENTIALS=1) passes
the caller's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN;
any other variable only when named in --pass-env (make: PASS_ENV="A B").
The credential values passed are masked in everything printed, in the forms
build/redaction.py knows (escaped, URL-encoded, base64 even wrapped, hex).
The function's own environment, declared at build (ENV_FILE, ENV), is given too:
the build wrote what its init check ran with beside the bootstrap
(bootstrap.environment.json, build/function_env.py); PASS_ENV wins over it.

Printed: the function's own output (print, logging, powertools' JSON logs,
EMF metrics) and the INIT_START / START / END / REPORT lines, then the reply.
The exit status is 1 when the function errored: the emulator answers 200 even
then, so an error is recognised by Lambda's error shape (errorType and
errorMessage) in the reply, or by a status other than 200.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from build.command import command_line
from build.errors import BuildError, EmulatorError, InvokeError
from build.function_env import read_environment
from build.redaction import Redactor
from build.rie import Emulator

CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
DEFAULT_REGION = "us-east-1"
# The emulator's own lines: `30 Nov 2026 15:24:41,030 [INFO] (rapid) ...`.
EMULATOR_LINE = re.compile(r"^\d{2} \w{3} \d{4} [\d:,]+ \[\w+\] \(rapid\) (?P<text>.*)$")
# Of those, the ones Lambda's own log also has.
KEPT_EMULATOR_LINES = ("INIT START", "INIT REPORT")


def function_env(
    caller: Mapping[str, str],
    timeout: str,
    tmpdir: str,
    task_root: str,
    pass_env: list[str],
    credentials: bool,
    init_trace: bool,
    declared: Mapping[str, str] | None = None,
) -> dict[str, str]:
    region = caller.get("AWS_REGION") or caller.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "TMPDIR": tmpdir,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": timeout,
        # Lambda's code directory; powertools' Tracer, for one, is on only where it is set.
        "LAMBDA_TASK_ROOT": task_root,
        # The function's own (no name Lambda reserves: build/function_env.py refuses them).
        **(declared or {}),
    }
    if credentials:
        missing = [n for n in CREDENTIALS[:2] if not caller.get(n)]
        if missing:
            raise InvokeError(
                f"AWS_CREDENTIALS=1 but {' and '.join(missing)} not set in your environment"
            )
        env.update({n: caller[n] for n in CREDENTIALS if caller.get(n)})
    for name in pass_env:
        if name not in caller:
            raise InvokeError(f"PASS_ENV names {name}, which is not set in your environment")
        env[name] = caller[name]
    if init_trace:
        env["STATICLAMBDA_INIT_TRACE"] = "1"
    return env


def lambda_log(emulator_log: str) -> list[str]:
    """The emulator's log as Lambda's would read: its own chatter left out."""
    lines = []
    for line in emulator_log.splitlines():
        match = EMULATOR_LINE.match(line)
        if match is None:
            if not line.startswith("rie: "):
                lines.append(line.rstrip())
        elif match.group("text").startswith(KEPT_EMULATOR_LINES):
            lines.append(match.group("text"))
    return lines


def function_errored(status: int, body: bytes) -> bool:
    if status != 200:
        return True
    try:
        reply = json.loads(body)
    except ValueError:
        return False
    return isinstance(reply, dict) and {"errorType", "errorMessage"} <= reply.keys()


def read_event(event: str, event_file: str | None) -> bytes:
    if not event_file:
        return event.encode()
    try:
        return Path(event_file).read_bytes()
    except OSError as e:
        raise InvokeError(f"EVENT_FILE={event_file}: {e.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    parser = command_line("build.invoke", __doc__)
    parser.add_argument("--bootstrap", default="dist/bootstrap")
    parser.add_argument("--event", default='{"text":"Hello"}', help="the event (make: EVENT=)")
    parser.add_argument("--event-file", help="read the event from this file (make: EVENT_FILE=)")
    parser.add_argument("--timeout", default="30", help="the function's timeout, in seconds")
    parser.add_argument("--init-trace", action="store_true", help="print the init trace")
    parser.add_argument("--pass-env", default="", help="names of your variables to pass on")
    parser.add_argument("--credentials", action="store_true", help="pass your AWS credentials")
    args = parser.parse_args(argv)
    bootstrap = Path(args.bootstrap).resolve()
    redactor = Redactor()  # the function may print what it was given: nothing shows it
    try:
        if not bootstrap.is_file():
            raise InvokeError(f"{bootstrap} does not exist: run `make build` first")
        event = read_event(args.event, args.event_file)
        with tempfile.TemporaryDirectory(prefix="staticlambda-invoke-") as tmpdir:
            env = function_env(
                os.environ,
                args.timeout,
                tmpdir,
                str(bootstrap.parent),
                args.pass_env.split(),
                args.credentials,
                args.init_trace,
                read_environment(bootstrap.parent),
            )
            redactor.hide(*(env.get(name) for name in CREDENTIALS))
            # The emulator's log holds what the function printed, unmasked: it goes
            # with this folder (the function's TMPDIR is another).
            with tempfile.TemporaryDirectory(prefix="staticlambda-rie-") as logs:
                log_path = Path(logs) / "emulator.log"
                with Emulator(
                    [str(bootstrap)], env=env, cwd=bootstrap.parent, log_path=log_path
                ) as rie:
                    status, body = rie.invoke(event, timeout=float(args.timeout) + 30)
                emulator_log = rie.log()
    except (InvokeError, EmulatorError, BuildError) as e:
        print(f"invoke: {redactor.redact(str(e))}", file=sys.stderr)
        return 1
    log = lambda_log(emulator_log)
    if log:  # redacted whole: a secret in wrapped base64 spans lines
        print(redactor.redact("\n".join(log)))
    print(redactor.redact(body.decode(errors="replace")), flush=True)
    if function_errored(status, body):
        print(f"invoke: the function errored (emulator status {status})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
