"""An instance that listens beyond loopback (the swarm runtime's) answers only requests that
carry its token; its health endpoints stay open, as they tell nothing but its phase (issue 14)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable
from typing import Any

from ..errors import error
from ..http.messages import Request, Response

HEADER = "x-instance-token"
OPEN = frozenset({"/livez", "/readyz", "/healthz"})


class TokenGate:
    """The worker behind a check of `HEADER` against the instance's token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def check(self, request: Request) -> None:
        self.app.check(request)

    def handle(self, request: Request, context: Any) -> Response | Awaitable[Response]:
        if not (request.method == "GET" and request.path in OPEN):
            given = request.headers.get(HEADER, "").encode()
            if not hmac.compare_digest(given, self.token):
                return error("unauthorized", f"this instance answers only with its token "
                             f"({HEADER})")
        response: Response | Awaitable[Response] = self.app.handle(request, context)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)
