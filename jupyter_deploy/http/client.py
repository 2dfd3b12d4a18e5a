"""HTTP/1.1 on an asyncio protocol: the client side the gateway uses to reach instances."""

from __future__ import annotations

import asyncio
import select
import socket

from .framing import MAX_HEAD, ChunkedBody, HttpError, parse_head

Answer = tuple[int, dict[str, str], bytes]  # status, headers (lower-case names), body


class UpstreamError(Exception):
    """The request was sent but no complete answer came back."""


class ResponseTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the instance answered {size} bytes")
        self.size = size


class ClientProtocol(asyncio.Protocol):
    """One keep-alive connection to an instance; one request at a time."""

    def __init__(self, max_response: int) -> None:
        self.max_response = max_response
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.head: tuple[int, dict[str, str]] | None = None
        self.chunked: ChunkedBody | None = None
        self.closed = False
        self.parked_at = 0.0  # when it last went idle in a pool

    @property
    def usable(self) -> bool:
        return not self.closed and self.waiter is None

    def still_open(self) -> bool:
        """Whether an idle connection can take a request: the peer may have closed it (its
        process died) without the event loop having seen it yet. Anything readable on an idle
        connection means it is closing."""
        if not self.usable or self.transport is None:
            return False
        poller = select.poll()
        poller.register(self.transport.get_extra_info("socket").fileno(), select.POLLIN)
        if poller.poll(0):
            self.close()
            return False
        return True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            if self.head is not None and self.chunked is None and "content-length" not in \
                    self.head[1]:
                self._resolve(bytes(self.buffer))  # a body delimited by the end of the stream
            else:
                self.waiter.set_exception(UpstreamError("the instance closed the connection"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(self, data: list[bytes]) -> asyncio.Future[Answer]:
        """Send one request; the future gives (status, headers, body)."""
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.head = None
        self.transport.writelines(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            return
        try:
            self._parse()
        except (HttpError, ValueError) as exc:
            self._fail(UpstreamError(f"malformed answer: {exc}"))
        except ResponseTooLarge as exc:
            self._fail(exc)

    def _parse(self) -> None:
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise HttpError("answer head too large")
                return
            start, headers = parse_head(bytes(self.buffer[:end]))
            del self.buffer[:end + 4]
            status = int(start.split(" ", 2)[1])
            if 100 <= status < 200:
                return self._parse() if self.buffer else None
            self.head = (status, headers)
            self.chunked = None
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = ChunkedBody(self.max_response)
            elif int(headers.get("content-length", "0")) > self.max_response:
                raise ResponseTooLarge(int(headers["content-length"]))
        status, headers = self.head
        if self.chunked is not None:
            done = self.chunked.feed(self.buffer)
            if done is None:
                raise ResponseTooLarge(self.chunked.size)
            if done:
                self._resolve(self.chunked.body())
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if len(self.buffer) >= length:
                body = bytes(self.buffer[:length])
                del self.buffer[:length]
                self._resolve(body)
        elif len(self.buffer) > self.max_response:
            raise ResponseTooLarge(len(self.buffer))

    def _resolve(self, body: bytes) -> None:
        waiter, (status, headers) = self.waiter, self.head  # type: ignore[misc]
        self.waiter = None
        if headers.get("connection", "").lower() == "close" or "content-length" not in headers \
                and self.chunked is None:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((status, headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
