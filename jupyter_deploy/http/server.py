"""HTTP/1.1 on asyncio protocols: the server side of the gateway and the workers.

Requests are parsed by llhttp (`httptools`, the parser of Node.js and uvicorn), strictly:
what it lets through and RFC 9112 forbids is refused in `framing.check_head`. On top of it
sit the project's own rules: a body limit enforced from the headers (413 before the body is
read, then linger-then-close), `Expect: 100-continue`, pipelined requests answered in order,
`Connection: close` ending the parsing, deadlines for the head, the body and keep-alive idle,
a bound on answers queued for a client that does not read (write watermarks pause reading),
and a stop in order (no new connections, idle ones closed, answers in flight given).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools

from .framing import Limits, Refusal, check_head, read_buffer, tokens, wants_close
from .messages import App, Request, Response

if TYPE_CHECKING:
    from .listener import HttpServer

__all__ = ["App", "Limits", "Request", "Response", "ServerProtocol"]

LINGER_S = 2.0  # how long a refused upload may keep sending before the socket closes
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
IDLE, HEAD, BODY = range(3)
log = logging.getLogger("jupyter_deploy.http")
Job = tuple[Request | None, Any, bool]  # a request read whole, its context, close after it


def _refusal(code: str, message: str) -> Response:
    """An error answer of the HTTP layer itself, from the one error table."""
    from ..errors import error  # errors.py builds on Response: imported here, not above

    return error(code, message)


class _Stop(Exception):
    """Parse nothing after this message."""


class _Refused:
    """A request refused from its headers; its body (within the limit) is read and dropped."""

    def __init__(self, response: Response) -> None:
        self.response = response


class ServerProtocol(asyncio.BufferedProtocol):
    """One client connection of an HTTP/1.1 server."""

    def __init__(self, app: App, max_body: int, idle_timeout_s: float = 300.0,
                 body_timeout_s: float = 15.0, limits: Limits | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.idle_timeout_s = idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self.limits = limits or Limits()
        # how often the timer looks at least, so that no deadline begun between looks is missed
        self.step_s = min(idle_timeout_s, body_timeout_s, self.limits.head_timeout_s,
                          self.limits.stall_timeout_s)
        self.parser = httptools.HttpRequestParser(self)
        self.pipeline: deque[Job] = deque()  # read whole, waiting for the answers before them
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a handler is answering
        self.closing = False  # the last request read closes the connection: read no more
        self.refused = False  # answered by the layer itself: what still comes is dropped
        self.reading_paused = self.writing_paused = False
        self.phase = IDLE
        self.request: Request | None = None  # headers in, body not complete
        self.context: Any = None
        self.close_after = False
        self.parts: list[bytes] = []
        self.size = self.head_bytes = self.overhead = self.trailer_bytes = 0
        self.url = self.url_piece = b""
        self.raw_fields: list[tuple[bytes, bytes]] = []
        self.last_seen = self.started = self.stalled_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.identify = getattr(app, "identify", None)
        self.server: HttpServer | None = None  # the server that stops it, if any
        self.stopping = False  # its server stops: close once the answer in flight is sent
        self.client = ""
        self.buffer = read_buffer()

    # connection events --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) else ""
        writer: asyncio.WriteTransport = transport  # type: ignore[assignment]
        writer.set_write_buffer_limits(high=self.limits.max_buffered)
        self.loop = asyncio.get_running_loop()
        self.last_seen = self.loop.time()
        self._arm(self.last_seen + self.step_s)
        over = self.server.admit(self) if self.server is not None else None
        if over is not None:
            self.refused = True
            self._finish(_refusal("unavailable", over), True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()
        if self.server is not None:
            self.server.lost(self)

    def pause_writing(self) -> None:
        self.writing_paused = True  # the client does not read: answer nothing more for now
        self.stalled_since = self.loop.time()
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._next()

    def shutdown(self) -> None:
        """Its server stops: close now when idle, else once the answer in flight is sent."""
        self.stopping = True
        if self.transport is not None and not self.busy and not self.pipeline \
                and self.phase == IDLE:
            self.transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self.closing or self.refused:
            return  # nothing after `Connection: close` or a refusal is ever run
        if self.phase == IDLE:  # idle is timed from here; a head or a body has its own clock
            self.last_seen = self.loop.time()
        if self.phase != BODY:
            self.head_bytes += len(data)
        else:
            self.overhead += len(data)
        url_known = self.phase == HEAD and bool(self.url)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._stopped(exc.__context__)
        except httptools.HttpParserUpgrade:
            self.closing = True  # no protocol switch here: answer, then close
        except httptools.HttpParserError as exc:
            if "HTTP version" in str(exc):  # llhttp knows 0.9 to 2.0 only: HTTP/1.9, say
                self._fail(Refusal("version_not_supported", f"{exc}; use HTTP/1.1"))
            else:
                self._fail(Refusal("bad_request", f"malformed request: {exc}"))
        else:
            self._check_partial(data, url_known)
        if self.pipeline or self.reading_paused:  # else nothing waits: a head in pieces, say
            self._next()

    def _stopped(self, cause: BaseException | None) -> None:
        if isinstance(cause, Refusal):
            self._fail(cause)
        elif not isinstance(cause, _Stop):
            log.error("reading a request failed", exc_info=cause)
            self._fail(Refusal("internal", "internal error"))

    def _check_partial(self, data: bytes | memoryview, url_known: bool) -> None:
        """Bound what a head or trailer still coming may hold, and refuse HTTP/0.9 (whose
        request line has no version: llhttp would wait for headers)."""
        if self.phase == BODY:
            if self.overhead > self.limits.max_trailer + 8 * self.size + 4096:
                self._fail(Refusal("headers_too_large", "the chunk framing or trailer is too "
                                   f"large (max_trailer {self.limits.max_trailer})"))
            return
        if self.phase != HEAD:
            return
        if self.head_bytes > self.limits.max_head:
            self._fail(Refusal("headers_too_large", "the request head is over "
                               f"{self.limits.max_head} bytes (max_head)"))
        elif self.url and not self.raw_fields:  # in the request line: a slow client, say
            data = bytes(data)  # a piece of a request line, short
            after = data if url_known else data[data.rfind(self.url_piece) + len(self.url_piece):]
            # the line ended with no version (a URL may also end at a packet's edge)
            if b"\n" in after and self.parser.get_http_version() == "0.0":
                self._fail(Refusal("bad_request", "HTTP/0.9 requests are not served"))

    def _arm(self, at: float) -> None:
        self.timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        """Close idle connections, and heads or bodies past their deadline: one timer per
        connection, moved by no byte, fires at the deadline of what it does (or in step_s)."""
        if self.transport is None:
            return
        now, head_s = self.loop.time(), self.limits.head_timeout_s
        if self.phase == HEAD:
            deadline = self.started + head_s
            if now >= deadline:
                self._fail(Refusal("request_timeout", "the request head took longer than "
                                   f"{head_s} s (head_timeout_s)"))
        elif self.phase == BODY:
            deadline = self.started + self.body_timeout_s
            if now >= deadline:
                self._fail(Refusal("request_timeout", "the request body took too long"))
        elif not self.busy and not self.pipeline:
            deadline = self.last_seen + self.idle_timeout_s
            if now >= deadline:
                self.transport.close()
                return
        else:
            deadline = now + self.step_s
        if self.writing_paused:
            stalled = self.stalled_since + self.limits.stall_timeout_s
            if now >= stalled:
                self.transport.abort()  # it reads none of its answers: they are not kept for it
                return
            deadline = min(deadline, stalled)
        self._next()
        if self.transport is not None:
            self._arm(deadline if now < deadline < now + self.step_s else now + self.step_s)

    # llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.phase, self.started = HEAD, self.loop.time()
        self.url, self.raw_fields, self.trailer_bytes = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.url_piece = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase != BODY:
            self.raw_fields.append((name, value))
            return
        self.trailer_bytes += len(name) + len(value) + 4  # a trailer field
        if self.trailer_bytes > self.limits.max_trailer:
            raise Refusal("headers_too_large", "the trailer fields are over "
                          f"{self.limits.max_trailer} bytes (max_trailer)")

    def on_headers_complete(self) -> None:
        self.phase, self.started = BODY, self.loop.time()
        self.head_bytes = self.size = self.overhead = 0
        self.parts = []
        if len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.raw_fields) \
                > self.limits.max_head:
            raise Refusal("headers_too_large", "the request head is over "
                          f"{self.limits.max_head} bytes (max_head)")
        request, repeated = self._request()
        check_head(request.version[5:], request.headers, repeated)
        headers = request.headers
        self.close_after = wants_close(request.version[5:], headers.get("connection", ""))
        length = int(headers.get("content-length") or 0)  # llhttp checked its digits
        if length > self.max_body:
            raise self._too_large(request.id)
        has_body = bool(length) or "transfer-encoding" in headers
        context = self.app.check(request)
        expects = "100-continue" in tokens(headers.get("expect", ""))
        if isinstance(context, Response):
            if expects and has_body:
                # the client waits for our word before it sends the body: it gets the refusal
                self.pipeline.append((request, _Refused(context), True))
                self.refused = True
                raise _Stop
            context = _Refused(context)
        elif expects and has_body and not self.busy and not self.pipeline:
            assert self.transport is not None
            self.transport.write(CONTINUE)
        self.request, self.context = request, context

    def _request(self) -> tuple[Request, set[str]]:
        headers: dict[str, str] = {}
        fields, repeated = [], set()
        for raw_name, raw_value in self.raw_fields:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            fields.append((name, value))
            key = name.lower()
            if key in headers:
                repeated.add(key)
                headers[key] = f"{headers[key]}, {value}"
            else:
                headers[key] = value
        request = Request(self.parser.get_method().decode(), self.url.decode("latin-1"),
                          f"HTTP/{self.parser.get_http_version()}", headers, connection=self,
                          fields=fields, client=self.client)
        if self.identify is not None:
            request.id = self.identify(headers)
        return request, repeated

    def _too_large(self, request_id: str) -> Refusal:
        return Refusal("payload_too_large",
                       f"the request body is larger than {self.max_body} bytes", linger=True,
                       request_id=request_id)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        self.overhead -= len(body)
        if self.size > self.max_body:
            raise self._too_large(self.request.id if self.request is not None else "")
        if not isinstance(self.context, _Refused):
            self.parts.append(body)

    def on_message_complete(self) -> None:
        request, self.request = self.request, None
        assert request is not None
        self.phase = IDLE
        request.body = b"".join(self.parts)
        self.parts = []
        self.pipeline.append((request, self.context, self.close_after))
        self.context = None
        if self.close_after:
            self.closing = True
            raise _Stop

    # answering ----------------------------------------------------------------------------

    def _fail(self, refusal: Refusal) -> None:
        """Answer with an error once the answers before it are given, and read no more."""
        self.refused = True
        self.phase, self.request = IDLE, None
        self.pipeline.append((None, refusal, True))

    def _flow(self) -> None:
        """Stop reading while answers wait: the client is not reading them, or it sent more
        requests ahead than the limit. A refused connection keeps reading (and dropping)."""
        pause = not self.refused and (self.writing_paused
                                      or len(self.pipeline) >= self.limits.max_pipeline)
        if self.transport is None or pause == self.reading_paused:
            return
        self.reading_paused = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _next(self) -> None:
        while self.pipeline and not self.busy and not self.writing_paused \
                and self.transport is not None:
            self._dispatch(*self.pipeline.popleft())
        self._flow()

    def _dispatch(self, request: Request | None, context: Any, close: bool) -> None:
        if isinstance(context, Refusal):
            self._refuse(context)
            return
        assert request is not None
        if isinstance(context, _Refused):
            self._finish(context.response, close, request)
            return
        try:
            result = self.app.handle(request, context)
        except Exception:  # noqa: BLE001 - the connection answers 500 and carries on
            log.exception("handler failed")
            result = _refusal("internal", "internal error")
        if isinstance(result, Response):
            self._finish(result, close, request)
            return
        self.busy = True
        task = asyncio.ensure_future(result)
        task.add_done_callback(lambda t: self._done(t, close, request))

    def _done(self, task: asyncio.Future[Response], close: bool, request: Request) -> None:
        self.busy = False
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("handler failed", exc_info=task.exception())
            response = _refusal("internal", "internal error")
        else:
            response = task.result()
        self._finish(response, close, request)
        self._next()

    def _finish(self, response: Response, close: bool, request: Request | None = None) -> None:
        if self.transport is None:
            return
        close = close or self.stopping
        request_id, head_only = (request.id, request.method == "HEAD") if request else ("", False)
        self.transport.writelines(response.encode(close, request_id, head_only))
        self.last_seen = self.loop.time()
        if close:
            self.closing = True
            self.transport.close()

    def _refuse(self, refusal: Refusal) -> None:
        """An error of the layer; for a refused upload, read and drop what the client still
        sends a while, so that it reads the answer instead of a connection reset."""
        transport = self.transport
        if not refusal.linger or transport is None:
            self._finish(_refusal(refusal.code, str(refusal)), True)
            return
        transport.writelines(_refusal(refusal.code, str(refusal)).encode(True, refusal.request_id))
        with contextlib.suppress(OSError):
            transport.write_eof()
        self.loop.call_later(LINGER_S, transport.close)
