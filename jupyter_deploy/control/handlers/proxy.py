"""`/deploy/api/...` in a notebook server: the whole control API, passed to the deploy service.

Jupyter's own authentication, authorization and XSRF checks run here unchanged (this is an
APIHandler); the service is then called with its own token. Status codes, JSON error bodies
and streams (followed logs, long-polled events) come back as the service sent them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from ..link import ServiceDown, ServiceLink, Target

REQUEST_FIELDS = ("Content-Type", "Accept", "If-None-Match")
ANSWER_FIELDS = ("Content-Type", "Cache-Control", "Retry-After", "Location", "ETag",
                 "X-Accel-Buffering", "Content-Disposition")
MAX_ANSWER = 1 << 30  # logs may be long; the service bounds what it sends
CONNECT_TIMEOUT_S = 5.0


class Unreachable(Exception):
    """Nothing was sent: the service's port refused or did not accept the connection."""


class _Relay(httputil.HTTPMessageDelegate):
    """Hands the service's answer to the handler as it comes."""

    def __init__(self, handler: ProxyHandler, hold_refusals: bool) -> None:
        self.handler = handler
        self.hold_refusals = hold_refusals  # a 401/403 is kept back, to retry after a look
        self.code = 0
        self.streaming = False
        self.held = False

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self.code = start_line.code
        self.held = self.hold_refusals and self.code in (401, 403)
        if self.held:
            return  # the service's token changed: the handler looks again and retries
        # No length: the service is streaming (it flushed before finishing); so do we.
        self.streaming = "Content-Length" not in headers
        self.handler.set_status(start_line.code, start_line.reason or None)
        for name in ANSWER_FIELDS:
            if name in headers:
                self.handler.set_header(name, headers[name])
        if self.streaming:
            self.handler.flush()  # the head now: the caller knows the stream has begun

    async def data_received(self, chunk: bytes) -> None:
        if self.held or self.handler.closed:
            return
        self.handler.write(chunk)
        if self.streaming:
            await self.handler.flush()


class ProxyHandler(APIHandler):
    """Every verb of the control API, authenticated here, answered by the service."""

    auth_resource = "deploy"
    closed = False
    upstream: IOStream | None = None

    @property
    def link(self) -> ServiceLink:
        link: ServiceLink = self.settings["deploy_link"]
        return link

    def on_connection_close(self) -> None:
        """The caller hung up: so does the service's side of a stream."""
        self.closed = True
        if self.upstream is not None:
            self.upstream.close()

    @web.authenticated
    @authorized
    async def get(self, rest: str = "") -> None:
        await self.forward()

    @web.authenticated
    @authorized
    async def post(self, rest: str = "") -> None:
        await self.forward()

    @web.authenticated
    @authorized
    async def put(self, rest: str = "") -> None:
        await self.forward()

    @web.authenticated
    @authorized
    async def patch(self, rest: str = "") -> None:
        await self.forward()

    @web.authenticated
    @authorized
    async def delete(self, rest: str = "") -> None:
        await self.forward()

    async def forward(self) -> None:
        """Send the request on; look again once when the service is gone or its token
        changed (it restarted), and answer 503 when no service answers."""
        for attempt in (1, 2):
            try:
                target = await self.link.target()
            except ServiceDown as exc:
                return self._unavailable(str(exc))
            try:
                # A refusal from a configured service is its answer (its token does not
                # change with a restart): a refused request is not sent twice.
                relay = await self._send(target, hold_refusals=attempt == 1 and
                                         self.link.configured is None)
            except Unreachable as exc:
                self.link.lost()
                if attempt == 2:
                    return self._unavailable(f"the deploy service at {target.url} does not "
                                             f"answer ({exc}); {self.link.how_to_start()}")
                continue
            except StreamClosedError:
                # Closed with no answer: a service dying as the request came. Only a request
                # that changes nothing may be sent again.
                if attempt == 1 and self.request.method == "GET" and not self._headers_written:
                    self.link.lost()
                    continue
                return self._broken(target)
            if relay.held:
                self.link.lost()
                continue
            break
        if not self.closed:
            self.finish()

    async def _send(self, target: Target, hold_refusals: bool) -> _Relay:
        """One exchange with the service; Unreachable if it could not begin."""
        parts = urlsplit(target.url)
        prefix = url_path_join(self.base_url, "deploy/api")
        path = parts.path.rstrip("/") + (self.request.uri or '')[len(prefix):]
        try:
            self.upstream = await TCPClient().connect(
                parts.hostname or "127.0.0.1", parts.port or 80, timeout=CONNECT_TIMEOUT_S)
        except (OSError, StreamClosedError, TimeoutError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None
        connection = HTTP1Connection(self.upstream, True, HTTP1ConnectionParameters(
            no_keep_alive=True, max_body_size=MAX_ANSWER, decompress=False))
        headers = httputil.HTTPHeaders({"Host": parts.netloc, "Connection": "close",
                                        "Authorization": f"token {target.token}"})
        for name in REQUEST_FIELDS:
            if name in self.request.headers:
                headers[name] = self.request.headers[name]
        body = self.request.body or b""
        if body or self.request.method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        relay = _Relay(self, hold_refusals)
        try:
            await connection.write_headers(
                httputil.RequestStartLine(self.request.method or "GET", path, "HTTP/1.1"),
                headers, body or None)
            connection.finish()
            await connection.read_response(relay)
        finally:
            self.upstream.close()
            self.upstream = None
        if relay.code == 0 and not self.closed:
            raise StreamClosedError()
        return relay

    def _unavailable(self, message: str) -> None:
        self._error(503, "service_unavailable", message, retry_after="1")

    def _broken(self, target: Target) -> None:
        if self.closed:
            return
        if self._headers_written:
            self.finish()  # a stream the service ended midway: end it here too
            return
        self.link.lost()
        self._error(502, "bad_gateway", f"the deploy service at {target.url} closed the "
                    "connection before it answered; see its log")

    def _error(self, status: int, code: str, message: str, retry_after: str = "") -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if retry_after:
            self.set_header("Retry-After", retry_after)
        self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Jupyter's own refusals (401, 403) in the control API's error shape."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "http_error",
                                          "message": message or self._reason}}))
