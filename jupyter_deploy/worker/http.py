"""A small HTTP/1.1 server on asyncio.Protocol: keep-alive, Content-Length bodies.

The worker only answers its own short list of endpoints, mostly to the gateway over pooled
keep-alive connections, so a full web framework would only add latency to every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

MAX_HEAD = 64 * 1024

Response = tuple[int, bytes]
Handler = Callable[[str, str, dict[str, str], bytes], "Response | Awaitable[Response]"]


def response_head(status: int, length: int, close: bool) -> bytes:
    reason = HTTPStatus(status).phrase
    connection = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n".encode() + connection + b"\r\n"
    )


class HttpProtocol(asyncio.Protocol):
    """One connection: parses requests in order and answers each with `handler`'s result."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.buffer = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.sent_continue = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def _reply(self, status: int, body: bytes, close: bool = False) -> None:
        if self.transport is None:
            return
        self.transport.write(response_head(status, len(body), close) + body)
        if close:
            self.transport.close()

    def _fail(self, status: int, message: str) -> None:
        self._reply(status, b'{"error": {"code": "bad_request", "message": "%s"}}' % message.encode(), True)

    def _process(self) -> None:
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._fail(431, "request head too large")
                return
            try:
                lines = self.buffer[:end].decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._fail(400, "malformed request")
                return
            if "chunked" in headers.get("transfer-encoding", ""):
                self._fail(411, "send the body with a Content-Length")
                return
            if length > self.max_body:
                self._fail(413, "request body larger than the limit")
                return
            if len(self.buffer) < end + 4 + length:
                if headers.get("expect", "").lower() == "100-continue" and not self.sent_continue:
                    self.sent_continue = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.sent_continue = False
            connection = headers.get("connection", "").lower()
            close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
            result = self.handler(method, target, headers, body)
            if isinstance(result, tuple):
                self._reply(*result, close=close)
                continue
            self.busy = True
            asyncio.ensure_future(result).add_done_callback(lambda f, c=close: self._done(f, c))
            return

    def _done(self, future: asyncio.Future, close: bool) -> None:
        self.busy = False
        if future.cancelled() or future.exception() is not None:
            self._fail(500, "internal error")
            return
        self._reply(*future.result(), close=close)
        if self.buffer:
            self._process()
