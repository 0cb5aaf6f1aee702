"""What the runtime really imports while it serves events, measured.

PyInstaller bundles everything the runtime's modules could import (httpcore's
optional `anyio`, and with it asyncio; inspect's and multiprocessing's start-up
hooks), though serving Lambda events never imports most of it. To know what
may be left out, this runs the real runtime against a throwaway local Runtime
API: an event that is not JSON, one whose handler raises, one that succeeds,
then a 403 that ends it (a 5xx the runtime would try again for 1.5 s); then a
handler that cannot be imported. It prints the modules that were imported, as
JSON.

    python -m build.runtime_imports     (in the build environment)
"""

from __future__ import annotations

import json
import os
import sys
from typing import ClassVar

from build.runtime_api import LocalRuntimeAPI, RuntimeAPIHandler

# Imported lazily by the runtime, on some paths only: the CA bundle (frozen.py),
# a streamed response, graceful shutdown, Lambda Managed Instances' workers.
# They must stay in every bundle.
LAZY = (
    "certifi",
    "runtime.streaming",
    "runtime._streaming_http",
    "runtime.shutdown",
    "runtime.workers",
)


class _OneShotRuntimeAPI(RuntimeAPIHandler):
    events: ClassVar[list[bytes]] = [b"not json", b'{"fail": true}', b'{"text": "Hello"}']

    def do_GET(self) -> None:
        if not self.events:
            self.answer(403)
            return
        body = self.events.pop(0)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": f"probe-{len(self.events)}",
            "Lambda-Runtime-Deadline-Ms": "9999999999999",
        }
        self.answer(200, headers, body)

    def do_POST(self) -> None:
        self.read_body()
        self.answer(202)


def probe_handler(event: dict[str, object], context: object) -> object:
    """Echo, or fail with a traceback (the error path formats its frames)."""
    if event.get("fail"):
        raise ValueError("probe")
    return event


def measure() -> list[str]:
    server = LocalRuntimeAPI(_OneShotRuntimeAPI)
    os.environ["AWS_LAMBDA_RUNTIME_API"] = server.address
    os.environ["STATICLAMBDA_INIT_TRACE"] = "1"
    import runtime.frozen  # noqa: F401  (what the frozen entry imports first)
    from runtime.__main__ import main

    # The runtime writes to file descriptors 1 and 2 itself: silence those.
    stdout, stderr = sys.stdout, sys.stderr
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            main(["build.runtime_imports.probe_handler"])
            # The init-error path too: a handler that cannot be imported.
            from runtime.errors import ErrorPayload
            from runtime.handler import resolve_handler
            from runtime.logs import log_error

            try:
                resolve_handler("no_such_module_anywhere.handler")
            except Exception as e:
                log_error(ErrorPayload.from_exception(e))
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sys.stdout, sys.stderr = stdout, stderr  # main() swapped in its own streams
    server.close()
    for name in LAZY:
        __import__(name)
    return sorted(sys.modules)


if __name__ == "__main__":
    print(json.dumps(measure()))
