"""`make invoke`: run a bootstrap under the official Runtime Interface Emulator,
invoke it once, print the reply and the emulator's INIT and REPORT lines.

    python -m build.invoke [--bootstrap dist/bootstrap] [--event JSON]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from build.rie import Emulator, EmulatorError

REPORT_MARKERS = (
    "INIT REPORT",
    "INIT START",
    "REPORT RequestId",
    "START RequestId",
    "END RequestId",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m build.invoke",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bootstrap", default="dist/bootstrap")
    parser.add_argument("--event", default='{"text":"Hello"}')
    parser.add_argument("--timeout", default="30", help="the function's timeout, in seconds")
    args = parser.parse_args(argv)
    bootstrap = Path(args.bootstrap).resolve()
    if not bootstrap.is_file():
        print(f"invoke: {bootstrap} does not exist: run `make build` first", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER"))}
    env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = args.timeout
    try:
        with Emulator([str(bootstrap)], env=env, cwd=bootstrap.parent) as rie:
            status, body = rie.invoke(args.event, timeout=float(args.timeout) + 30)
    except EmulatorError as e:
        print(f"invoke: {e}", file=sys.stderr)
        return 1
    for line in rie.log().splitlines():
        if any(marker in line for marker in REPORT_MARKERS) or "[ERROR]" in line:
            print(line.strip())
    print(body.decode(errors="replace"), flush=True)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
