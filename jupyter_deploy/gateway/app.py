"""The gateway: the data plane third parties call, on its own port.

It sits directly on Tornado's HTTP/1.1 connection layer rather than on `web.Application`:
it sees the headers before the body (a 17 MB upload is refused without being read), and it
forwards the body bytes to the instance as they came, without re-encoding the JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from http import HTTPStatus
from typing import Any

from tornado import httputil, iostream
from tornado.httpserver import HTTPServer

from ..types import input_errors, invalid_input_body
from .routing import MAX_BYTES, NoInstance, Route, Routes
from .upstream import ResponseTooLarge, UpstreamError

log = logging.getLogger("jupyter_deploy.gateway")
EXECUTE_PATH = re.compile(r"/v1/nodes/([^/:%]+)(?::|%3[Aa])execute\Z")
LINGER_S = 2.0  # how long a refused upload may keep sending before the socket is closed


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return json.dumps({"error": error}).encode()


class Gateway(httputil.HTTPServerConnectionDelegate):
    """Serves `POST /v1/nodes/{node}:execute`, the `x-node-id` header form and `/healthz`."""

    def __init__(self, routes: Routes, request_timeout_s: float = 15.0,
                 idle_timeout_s: float = 300.0) -> None:
        self.routes = routes
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.server: HTTPServer | None = None

    def listen(self, host: str, port: int) -> int:
        """Start serving; return the bound port (useful when `port` is 0)."""
        self.server = HTTPServer(
            self, idle_connection_timeout=self.idle_timeout_s, body_timeout=self.request_timeout_s,
            max_body_size=2 * MAX_BYTES, decompress_request=False,
        )
        sockets = self._bind(host, port)
        self.server.add_sockets(sockets)
        return sockets[0].getsockname()[1]

    @staticmethod
    def _bind(host: str, port: int) -> list[socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"the gateway cannot listen on {host}:{port}: {exc.strerror}") from exc
        sock.listen(1024)
        return [sock]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection
                      ) -> httputil.HTTPMessageDelegate:
        return _Request(self, request_conn)


class _Request(httputil.HTTPMessageDelegate):
    def __init__(self, gateway: Gateway, conn: httputil.HTTPConnection) -> None:
        self.gateway = gateway
        self.conn = conn
        self.chunks: list[bytes] = []
        self.size = 0
        self.route: Route | None = None
        self.error: GatewayError | None = None
        self.done = False  # answered early: ignore the rest of the body
        self.closed = False

    def headers_received(self, start_line, headers: httputil.HTTPHeaders) -> None:
        try:
            self.route = self._route(start_line, headers)
        except GatewayError as exc:
            self.error = exc
        length = headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BYTES:
            self._refuse_upload()

    def _route(self, start_line, headers: httputil.HTTPHeaders) -> Route | None:
        path = start_line.path.split("?", 1)[0]
        node = headers.get("x-node-id")
        if node is None:
            match = EXECUTE_PATH.match(path)
            if match is None:
                if path == "/healthz" and start_line.method == "GET":
                    return None
                if path.startswith("/v1/aliases/") or "x-node-alias" in headers:
                    raise GatewayError(404, "not_found", "unknown alias")
                raise GatewayError(404, "not_found", f"no endpoint {start_line.method} {path}")
            node = match.group(1)
        elif path != "/":
            raise GatewayError(404, "not_found", "a checkpoint node executes on POST /")
        if start_line.method != "POST":
            raise GatewayError(405, "method_not_allowed", "use POST to execute",
                               headers={"Allow": "POST"})
        route = self.gateway.routes.nodes.get(node)
        if route is None:
            raise GatewayError(404, "not_found", f"unknown node {node!r}", field="node")
        auth = headers.get("Authorization", "")
        if not auth:
            raise GatewayError(401, "unauthorized", "send Authorization: Bearer <node key>",
                               headers={"WWW-Authenticate": "Bearer"})
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not route.key_matches(key.strip()):
            raise GatewayError(403, "forbidden", f"the key does not open node {node!r}")
        return route

    def _refuse_upload(self) -> None:
        """Answer 413 before the body is read, then let the client finish sending and close."""
        self.done = True
        error = GatewayError(413, "payload_too_large",
                             f"the request body is larger than {MAX_BYTES} bytes")
        stream = self.conn.detach()
        stream.write(_response(413, error.body(), {"Connection": "close"}))
        asyncio.ensure_future(_linger(stream))

    def data_received(self, chunk: bytes) -> None:
        if self.done:
            return
        self.size += len(chunk)
        if self.size > MAX_BYTES:  # a chunked upload that grew too large
            self.done = True
            self._write(GatewayError(413, "payload_too_large",
                                     f"the request body is larger than {MAX_BYTES} bytes"))
            return
        self.chunks.append(chunk)

    def finish(self) -> None:
        if self.done:
            return
        if self.error is not None:
            self._write(self.error)
        elif self.route is None:
            self._send(200, b'{"status": "ok"}')
        else:
            asyncio.ensure_future(self._execute(self.route, b"".join(self.chunks)))

    def on_connection_close(self) -> None:
        self.closed = True

    async def _execute(self, route: Route, body: bytes) -> None:
        status, data, headers = await execute(
            self.gateway.routes, route, body, self.gateway.request_timeout_s)
        self._send(status, data, headers)

    def _write(self, error: GatewayError) -> None:
        self._send(error.status, error.body(), error.headers)

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        if self.closed:
            return
        headers = httputil.HTTPHeaders({"Content-Type": "application/json",
                                        "Content-Length": str(len(body))})
        for name, value in (extra or {}).items():
            headers[name] = value
        start = httputil.ResponseStartLine("HTTP/1.1", status, HTTPStatus(status).phrase)
        try:
            self.conn.write_headers(start, headers, body)
            self.conn.finish()
        except iostream.StreamClosedError:
            pass


async def execute(routes: Routes, route: Route, body: bytes, timeout_s: float
                  ) -> tuple[int, bytes, dict[str, str]]:
    """Validate a request body and run it on the node: (status, body, extra headers)."""
    try:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise GatewayError(400, "malformed_json", f"the body is not valid JSON: {exc}",
                               field="body") from None
        errors = input_errors(route.inputs, payload)
        if errors:
            return 422, json.dumps(invalid_input_body(errors)).encode(), {}
        try:
            status, data, instance = await routes.execute(route, body, timeout_s)
        except NoInstance:
            raise GatewayError(503, "unavailable", f"node {route.node!r} has no healthy "
                               "instance right now", headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise GatewayError(504, "timeout", f"the instance did not answer within "
                               f"{timeout_s:g} s") from None
        except ResponseTooLarge as exc:
            raise GatewayError(502, "response_too_large", f"the instance answered {exc.size} "
                               f"bytes, more than the {MAX_BYTES} allowed") from None
        except UpstreamError as exc:
            raise GatewayError(502, "bad_gateway", f"the instance failed: {exc}") from None
        return status, data, {"x-instance-id": instance}
    except GatewayError as exc:
        return exc.status, exc.body(), exc.headers


def _response(status: int, body: bytes, extra: dict[str, str]) -> bytes:
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _linger(stream: iostream.IOStream) -> None:
    """Half-close, then discard what the client still sends, so it reads the answer, not a reset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER_S
    try:
        await stream.write(b"")
        stream.socket.shutdown(socket.SHUT_WR)
        while loop.time() < deadline:
            await asyncio.wait_for(stream.read_bytes(1 << 16, partial=True),
                                   deadline - loop.time())
    except (iostream.StreamClosedError, asyncio.TimeoutError, OSError):
        pass
    finally:
        stream.close()
