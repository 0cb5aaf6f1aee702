"""A streaming handler for a Function URL (invoke mode RESPONSE_STREAM): the
caller sees each line as it is yielded, not all of them at the end.

The first item is the HTTP status and headers; every item after it is a piece
of the body, sent at once (runtime/streaming.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Union

from runtime.streaming import HttpResponse

# Seconds between lines: long enough to see them arrive one by one.
PAUSE = 0.2


def handler(event: Any, context: Any) -> Iterator[Union[HttpResponse, str]]:
    count = 5
    if isinstance(event, dict):
        count = int((event.get("queryStringParameters") or {}).get("count", count))
    yield HttpResponse(
        status_code=200,
        headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
    )
    for i in range(1, count + 1):
        yield f"line {i} of {count}\n"
        if i < count:
            time.sleep(PAUSE)
