"""The gateway: the data plane third parties call, on its own port.

It sees the headers before the body (a 17 MB upload is refused without being read), checks
the key and the input, and forwards the body bytes to the least-loaded healthy instance as
they came, without re-encoding the JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket

from ..http11 import (
    Request, Response, ResponseTooLarge, ServerProtocol, UpstreamError, error,
)
from ..types import input_errors, invalid_input_body
from .routing import MAX_BYTES, NoInstance, Route, Routes

log = logging.getLogger("jupyter_deploy.gateway")
EXECUTE_PATH = re.compile(r"/v1/nodes/([^/:%]+)(?::|%3[Aa])execute\Z")
HEALTHY = Response(200, b'{"status": "ok"}')


class Gateway:
    """Serves `POST /v1/nodes/{node}:execute`, the `x-node-id` header form and `/healthz`."""

    def __init__(self, routes: Routes, request_timeout_s: float = 15.0,
                 idle_timeout_s: float = 300.0) -> None:
        self.routes = routes
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.server: asyncio.AbstractServer | None = None

    async def listen(self, host: str, port: int) -> int:
        """Start serving; return the bound port (useful when `port` is 0)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"the gateway cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.server = await asyncio.get_running_loop().create_server(
            lambda: ServerProtocol(self, MAX_BYTES, self.idle_timeout_s, self.request_timeout_s),
            sock=sock, backlog=1024)
        return sock.getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def check(self, request: Request) -> Route | Response | None:
        """Route and authenticate from the headers alone."""
        path = request.path
        node = request.headers.get("x-node-id")
        if node is None:
            match = EXECUTE_PATH.match(path)
            if match is None:
                if path == "/healthz" and request.method == "GET":
                    return None
                if path.startswith("/v1/aliases/") or "x-node-alias" in request.headers:
                    return error(404, "not_found", "unknown alias", field="alias")
                return error(404, "not_found", f"no endpoint {request.method} {path}")
            node = match.group(1)
        elif path != "/":
            return error(404, "not_found", "a checkpoint node executes on POST /")
        if request.method != "POST":
            return error(405, "method_not_allowed", "use POST to execute", headers={"Allow": "POST"})
        route = self.routes.nodes.get(node)
        if route is None:
            return error(404, "not_found", f"unknown node {node!r}", field="node")
        auth = request.headers.get("authorization")
        if not auth:
            return error(401, "unauthorized", "send Authorization: Bearer <node key>",
                         headers={"WWW-Authenticate": "Bearer"})
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not route.key_matches(key.strip()):
            return error(403, "forbidden", f"the key does not open node {node!r}")
        return route

    def handle(self, request: Request, route: Route | None):
        if route is None:
            return HEALTHY
        return execute(self.routes, route, request.body, self.request_timeout_s)


async def execute(routes: Routes, route: Route, body: bytes, timeout_s: float) -> Response:
    """Validate a request body and run it on the node."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return error(400, "malformed_json", f"the body is not valid JSON: {exc}", field="body")
    errors = input_errors(route.inputs, payload)
    if errors:
        return Response(422, json.dumps(invalid_input_body(errors)).encode())
    try:
        status, data, instance = await routes.execute(route, body, timeout_s)
    except NoInstance:
        return error(503, "unavailable", f"node {route.node!r} has no healthy instance right now",
                     headers={"Retry-After": "1"})
    except TimeoutError:
        return error(504, "timeout", f"the instance did not answer within {timeout_s:g} s")
    except ResponseTooLarge as exc:
        return error(502, "response_too_large", f"the instance answered {exc.size} bytes, more "
                     f"than the {MAX_BYTES} allowed")
    except UpstreamError as exc:
        return error(502, "bad_gateway", f"the instance failed: {exc}")
    return Response(status, data, {"x-instance-id": instance})
