"""HTTP/1.1 on an asyncio protocol, parsed by llhttp: the client side the gateway, the probes,
replay and the scrapes use to reach instances.

A connection is reused only when its last answer was read exactly: bytes that no request
asked for (a second answer, an answer to HEAD with a body) close it, so that they can never
be served to the next caller.
"""

from __future__ import annotations

import asyncio
import select
import socket

import httptools

from .framing import MAX_HEAD, read_buffer


class UpstreamError(Exception):
    """The request was sent but no complete answer came back."""


class ResponseTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the instance answered {size} bytes")
        self.size = size


class Fields(dict[str, str]):
    """Header fields by lower-case name (repeated ones joined with ", "), and `raw`, the
    fields as they came, in order (two Set-Cookie stay two)."""

    def __init__(self, raw: list[tuple[str, str]]) -> None:
        super().__init__()
        self.raw = raw
        for name, value in raw:
            key = name.lower()
            self[key] = f"{self[key]}, {value}" if key in self else value


Answer = tuple[int, Fields, bytes]  # status, headers, body


class _HeadDone(Exception):
    """The answer to a HEAD request ends with its head."""


class _Unasked(Exception):
    """The instance sent more than the answer asked for."""


class ClientProtocol(asyncio.BufferedProtocol):
    """One keep-alive connection to an instance; one request at a time."""

    def __init__(self, max_response: int) -> None:
        self.max_response = max_response
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.parked_at = 0.0  # when it last went idle in a pool
        self.buffer = read_buffer()
        self._reset(False)

    def _reset(self, head_request: bool) -> None:
        self.head_request = head_request
        self.raw_head = bytearray()  # what came before the head ended (HEAD answers only)
        self.head_bytes = 0
        self.fields: list[tuple[str, str]] = []
        self.headers: Fields | None = None  # once the final head is in
        self.status = 0
        self.parts: list[bytes] = []
        self.size = 0
        self.interim = False  # a 1xx answer came first

    @property
    def usable(self) -> bool:
        return not self.closed and self.waiter is None

    def still_open(self) -> bool:
        """Whether an idle connection can take a request: the peer may have closed it (its
        process died) without the event loop having seen it yet. Anything readable on an idle
        connection means it is closing, or sent what nobody asked for."""
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
            headers = self.headers
            if headers is not None and "content-length" not in headers \
                    and "transfer-encoding" not in headers:
                self._resolve(b"".join(self.parts))  # a body delimited by the end of the stream
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
        self._reset(data[0].startswith(b"HEAD "))
        self.transport.writelines(data)
        return self.waiter

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self.waiter is None:
            self.close()  # nobody asked for these bytes: the connection is not clean
            return
        if self.headers is None:
            self.head_bytes += len(data)
            if self.head_request:
                self.raw_head += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._stopped(exc.__context__)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed answer: {exc}"))
        else:
            if self.headers is None and self.head_bytes > MAX_HEAD:
                self._fail(UpstreamError("answer head too large"))

    def _stopped(self, cause: BaseException | None) -> None:
        if isinstance(cause, _HeadDone):
            end = self.raw_head.find(b"\r\n\r\n")
            if self.interim or end < 0 or len(self.raw_head) > end + 4:
                self.close()  # bytes after an answer to HEAD: not reused
            else:
                self.parser = httptools.HttpResponseParser(self)  # llhttp would read a body
            self._resolve(b"")
        elif isinstance(cause, _Unasked):
            self.close()
        elif isinstance(cause, ResponseTooLarge):
            self._fail(cause)
        else:
            self._fail(UpstreamError(f"malformed answer: {cause}"))

    # llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:
            raise _Unasked

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers is None:
            self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: the answer comes after
            self.fields, self.interim = [], True
            return
        self.status, self.headers = status, Fields(self.fields)
        length = self.headers.get("content-length")
        if length is not None and int(length) > self.max_response:
            raise ResponseTooLarge(int(length))
        if self.head_request:
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_response:
            raise ResponseTooLarge(self.size)
        self.parts.append(body)

    def on_message_complete(self) -> None:
        if self.headers is None:
            return  # the end of a 1xx answer
        if not self.parser.should_keep_alive():
            self.close()
        self._resolve(b"".join(self.parts))

    def _resolve(self, body: bytes) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.headers or Fields([]), body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
