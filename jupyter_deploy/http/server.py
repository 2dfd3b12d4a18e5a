"""HTTP/1.1 on asyncio protocols: the server side of the gateway and the workers.

Both ends of the data plane are ours and carry small JSON bodies at high rates, so the
per-request cost of a general framework shows directly in the latency users see
(see benchmarks/). This module keeps to what the data plane needs: keep-alive, pipelined
requests answered in order, Content-Length and chunked bodies, `Expect: 100-continue`,
a body limit enforced from the headers (413 before the body is read), idle and body
timeouts, and a stop in order (no new connections, idle ones closed, answers in flight
given). Imports stay light: instances load it at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from .framing import DIGITS, MAX_HEAD, ChunkedBody, HttpError, parse_head

LINGER_S = 2.0  # how long a refused upload may keep sending before the socket closes
REASONS = {s.value: s.phrase for s in HTTPStatus}
log = logging.getLogger("jupyter_deploy.http")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None

    def encode(self, close: bool, request_id: str = "") -> list[bytes]:
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}\r\n"
                f"Content-Length: {len(self.body)}\r\n"]
        if request_id:
            head.append(f"x-request-id: {request_id}\r\n")
        if self.headers:
            head += [f"{k}: {v}\r\n" for k, v in self.headers.items()]
        if "Content-Type" not in (self.headers or {}):
            head.append("Content-Type: application/json\r\n")
        if close:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        encoded = "".join(head).encode("latin-1")
        if len(self.body) < 256 * 1024:  # one send for small answers; no copy of big ones
            return [encoded + self.body]
        return [encoded, self.body]


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    connection: ServerProtocol | None = None
    id: str = ""  # given by the app's `identify`, returned in `x-request-id`

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def abandoned(self) -> bool:
        """The client hung up before its answer (a gateway that timed out, say)."""
        return self.connection is not None and self.connection.transport is None


class App(Protocol):
    def check(self, request: Request) -> Any:
        """Called when the headers are in: a Response refuses the request before its body
        is read; anything else is handed to `handle` as its context."""

    def handle(self, request: Request, context: Any) -> Response | Awaitable[Response]:
        """Answer a complete request."""

    # Optional: `identify(headers) -> str` names each request; every answer to it then
    # carries the name in `x-request-id`.


def _refusal(code: str, message: str) -> Response:
    """An error answer of the HTTP layer itself, from the one error table."""
    from ..errors import error  # errors.py builds on Response: imported here, not above

    return error(code, message)


class ServerProtocol(asyncio.Protocol):
    """One client connection of an HTTP/1.1 server."""

    def __init__(self, app: App, max_body: int, idle_timeout_s: float = 300.0,
                 body_timeout_s: float = 15.0) -> None:
        self.app = app
        self.max_body = max_body
        self.idle_timeout_s = idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None  # headers in, body not complete
        self.context: Any = None
        self.length = 0
        self.chunked: ChunkedBody | None = None
        self.busy = False  # a handler is answering; parse nothing more until it is done
        self.paused = False
        self.refused = False  # answered 413: what still comes is dropped
        self.last_seen = 0.0
        self.request_started = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.identify = getattr(app, "identify", None)
        self.server: HttpServer | None = None  # the server that stops it, if any
        self.stopping = False  # its server stops: close once the answer in flight is sent

    # connection events --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.loop = asyncio.get_running_loop()
        self.last_seen = self.loop.time()
        self.timer = self.loop.call_later(min(self.idle_timeout_s, self.body_timeout_s),
                                          self._on_timer)
        if self.server is not None:
            self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()
        if self.server is not None:
            self.server.lost(self)

    def shutdown(self) -> None:
        """Its server stops: close now when idle, else once the answer in flight is sent."""
        self.stopping = True
        if self.transport is not None and not self.busy and self.request is None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self.buffer += data
        self.last_seen = self.loop.time()
        if self.busy:
            if len(self.buffer) > self.max_body + MAX_HEAD and not self.paused:
                self.paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._process()

    def _on_timer(self) -> None:
        """Close idle connections and uploads that take longer than the body timeout."""
        if self.transport is None:
            return
        now = self.loop.time()
        if self.request is not None and now - self.request_started > self.body_timeout_s:
            self._finish(_refusal("request_timeout", "the request body took too long"), True,
                         self.request.id)
            return
        if not self.busy and self.request is None and now - self.last_seen > self.idle_timeout_s:
            self.transport.close()
            return
        self.timer = self.loop.call_later(min(self.idle_timeout_s, self.body_timeout_s) / 4,
                                          self._on_timer)

    # parsing ------------------------------------------------------------------------------

    def _process(self) -> None:
        try:
            while self.transport is not None and not self.busy:
                if self.request is None and not self._read_head():
                    return
                if not self._read_body():
                    return
                request, context = self.request, self.context
                self.request = self.context = None
                self._dispatch(request, context)  # type: ignore[arg-type]
        except HttpError as exc:
            self._finish(_refusal("bad_request", str(exc)), close=True)

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._finish(_refusal("headers_too_large", "the request head is too large"), True)
            return False
        while end == 0:  # tolerate blank lines between requests
            del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
        start, headers = parse_head(bytes(self.buffer[:end]))
        del self.buffer[:end + 4]
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(f"malformed request line {start[:80]!r}")
        request = Request(parts[0], parts[1], parts[2], headers, connection=self)
        if self.identify is not None:
            request.id = self.identify(headers)
        self.request_started = self.loop.time()
        self.chunked = None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.chunked, self.length = ChunkedBody(self.max_body), 0
        else:
            length = headers.get("content-length", "0")
            if not DIGITS.match(length):
                raise HttpError("malformed Content-Length")
            self.length = int(length)
        if self.length > self.max_body:
            self._refuse_upload(request.id)
            return False
        context = self.app.check(request)
        expects_continue = headers.get("expect", "").lower() == "100-continue"
        if isinstance(context, Response):
            if expects_continue and (self.length or self.chunked):
                # the client waits for our word before it sends the body: it gets the refusal
                self.refused = self.busy = True
                self._finish(context, True, request.id)
                return False
            context = _Refused(context)
        elif expects_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        self.request, self.context = request, context
        return True

    def _read_body(self) -> bool:
        request = self.request
        assert request is not None
        if self.chunked is not None:
            done = self.chunked.feed(self.buffer)
            if done is None:
                self._refuse_upload(request.id)
                return False
            if not done:
                return False
            request.body = self.chunked.body()
            return True
        if len(self.buffer) < self.length:
            return False
        request.body = bytes(self.buffer[:self.length])
        del self.buffer[:self.length]
        return True

    # answering ----------------------------------------------------------------------------

    def _dispatch(self, request: Request, context: Any) -> None:
        close = _wants_close(request)
        if isinstance(context, _Refused):
            self._finish(context.response, close, request.id)
            return
        try:
            result = self.app.handle(request, context)
        except Exception:  # noqa: BLE001 - the connection answers 500 and carries on
            log.exception("handler failed")
            result = _refusal("internal", "internal error")
        if isinstance(result, Response):
            self._finish(result, close, request.id)
            return
        self.busy = True
        task = asyncio.ensure_future(result)
        task.add_done_callback(lambda t: self._done(t, close, request.id))

    def _done(self, task: asyncio.Future[Response], close: bool, request_id: str) -> None:
        self.busy = False
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("handler failed", exc_info=task.exception())
            response = _refusal("internal", "internal error")
        else:
            response = task.result()
        self._finish(response, close, request_id)
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer and self.transport is not None:
            self._process()

    def _finish(self, response: Response, close: bool, request_id: str = "") -> None:
        if self.transport is None:
            return
        close = close or self.stopping
        self.transport.writelines(response.encode(close, request_id))
        if close:
            self.transport.close()

    def _refuse_upload(self, request_id: str) -> None:
        """413 at once; then read and drop what the client still sends, so that it reads
        the answer instead of a connection reset, and close."""
        response = _refusal("payload_too_large",
                           f"the request body is larger than {self.max_body} bytes")
        transport = self.transport
        assert transport is not None
        transport.writelines(response.encode(True, request_id))
        self.buffer.clear()
        self.refused = self.busy = True  # parse nothing more on this connection
        self.request = None
        with contextlib.suppress(OSError):
            transport.write_eof()
        self.loop.call_later(LINGER_S, transport.close)


class _Refused:
    """A request refused from its headers; its body (within the limit) is read and dropped."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _wants_close(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection != "keep-alive"
    return connection == "close"


class HttpServer:
    """A listening socket and the connections it accepted, so that it can stop in order."""

    def __init__(self, app: App, max_body: int, idle_timeout_s: float = 300.0,
                 body_timeout_s: float = 15.0) -> None:
        self.settings = (app, max_body, idle_timeout_s, body_timeout_s)  # of each connection
        self.connections: set[ServerProtocol] = set()
        self.server: asyncio.Server | None = None
        self._drained = asyncio.Event()

    async def start(self, sock: socket.socket, backlog: int = 100) -> None:
        """Serve on `sock`, a bound socket."""
        self.server = await asyncio.get_running_loop().create_server(
            self._connection, sock=sock, backlog=backlog)

    def _connection(self) -> ServerProtocol:
        protocol = ServerProtocol(*self.settings)
        protocol.server = self
        return protocol

    def lost(self, connection: ServerProtocol) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._drained.set()

    async def stop(self, timeout_s: float) -> None:
        """Stop accepting, close idle keep-alive connections, wait up to `timeout_s` for the
        answers in flight (each then closes its connection), and close what is left."""
        if self.server is None:
            return
        self.server.close()  # new connections are refused from now on
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._drained.wait()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        self.server = None
