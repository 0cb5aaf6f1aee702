"""The HTTP transport under the Runtime API client: httpx's own HTTP/1.1
transport, without the TLS set-up it always does.

`httpx.HTTPTransport()` builds an SSL context when it is made (OpenSSL's
initialisation, and a CA bundle unless verify=False). The Runtime API is plain
HTTP on a local address, so none of it is ever used, yet in the static
bootstrap it cost more cold start than the handler's import. The pool is made
here with no SSL context at all; httpcore would only build one, lazily, for an
https URL, which the runtime never asks for.
"""

from __future__ import annotations

import httpcore
import httpx


class RuntimeAPITransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        # Deliberately not HTTPTransport.__init__ (see the module docstring):
        # handle_request() and close() need only the pool. One keep-alive
        # connection, never expired: the runtime makes one request at a time,
        # and a frozen-and-thawed environment reconnects if it must.
        self._pool = httpcore.ConnectionPool(
            ssl_context=None,
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=None,
            http1=True,
            http2=False,
        )
