"""The HTTP/1.1 protocol of the data plane, on real sockets: framing the clients rely on."""

from __future__ import annotations

import asyncio
import socket

import pytest

from jupyter_deploy.errors import error
from jupyter_deploy.http.listener import HttpServer
from jupyter_deploy.http.messages import Request, Response
from jupyter_deploy.http.server import ServerProtocol

from ..conftest import until


class Echo:
    """Answers with the body it got; refuses /private from the headers."""

    def check(self, request: Request):
        if request.path == "/private":
            return error("forbidden", "no")
        return None

    def __init__(self) -> None:
        self.release = asyncio.Event()  # lets /held answer

    def handle(self, request: Request, context: None):
        if request.path == "/slow":
            return self._slow(request)
        if request.path == "/held":
            return self._held()
        return Response(200, request.method.encode() + b" " + request.body)

    async def _held(self) -> Response:
        await self.release.wait()
        return Response(200, b"held")

    async def _slow(self, request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response(200, b"slow " + request.body)


@pytest.fixture
def server(jp_asyncio_loop):
    async def start():
        return await asyncio.get_running_loop().create_server(
            lambda: ServerProtocol(Echo(), max_body=1000), "127.0.0.1", 0)

    running = jp_asyncio_loop.run_until_complete(start())
    yield running.sockets[0].getsockname()[1]
    running.close()


async def exchange(port: int, data: bytes, answers: int = 1) -> list[tuple[bytes, bytes]]:
    """Send raw bytes; read `answers` responses (head, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    results = []
    try:
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if head.startswith(b"HTTP/1.1 100"):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            results.append((head, await reader.readexactly(length)))
    finally:
        writer.close()
    return results


async def test_pipelined_requests_are_answered_in_order(server):
    data = (b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na"
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb"
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    answers = await exchange(server, data, answers=3)
    assert [body for _, body in answers] == [b"slow a", b"POST b", b"GET "]


async def trickle(server: HttpServer, port: int, head: bytes) -> bytes:
    """Send a head one byte a packet (each read by the server before the next is sent), as a
    slow client does; what the server answers until it closes or says HTTP/1.1 ... GET."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        connection = await until(lambda: next(iter(server.connections), None), timeout=5,
                                 message="the connection to be accepted")
        for sent in range(1, len(head) + 1):
            writer.write(head[sent - 1:sent])
            if sent < len(head):
                await until(lambda n=sent: connection.head_bytes == n or connection.refused,
                            timeout=5, message=f"the server to read {head[:sent]!r}")
            if connection.refused:
                break
        return await asyncio.wait_for(reader.read(200), 5)
    finally:
        writer.close()


async def test_a_head_cut_anywhere_is_read_whole(jp_asyncio_loop):
    """However the packets cut a head (after its URL, say), it is the same request, and
    HTTP/0.9 is still refused."""
    server = HttpServer(Echo(), max_body=1000)
    sock = socket.create_server(("127.0.0.1", 0))
    await server.start(sock)
    port = sock.getsockname()[1]
    try:
        answer = await trickle(server, port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer
        answer = await trickle(server, port, b"GET /x\r\n")
        assert answer.startswith(b"HTTP/1.1 400") and b"HTTP/0.9" in answer, answer
    finally:
        await server.stop(1.0)


async def test_chunked_body(server):
    data = (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    [(head, body)] = await exchange(server, data)
    assert head.startswith(b"HTTP/1.1 200") and body == b"POST hello world"


async def test_expect_continue(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"abc")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(8) == b"POST abc"
    writer.close()


async def test_refusal_answers_at_once_when_the_client_waits_to_send(server):
    head = (b"POST /private HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n")
    [(head, body)] = await exchange(server, head)  # and no body: it waits for a 100
    assert head.startswith(b"HTTP/1.1 403") and b"Connection: close" in head


async def test_limits_and_refusals(server):
    [(head, body)] = await exchange(server, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    chunk = b"200\r\n" + b"x" * 512 + b"\r\n"  # two chunks of 512: over the 1000 limit
    [(head, _)] = await exchange(
        server, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk)
    assert head.startswith(b"HTTP/1.1 413")
    # refused from its headers, its small body dropped, and the connection still serves
    answers = await exchange(server, b"POST /private HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nno"
                                     b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok", answers=2)
    assert answers[0][0].startswith(b"HTTP/1.1 403") and answers[1][1] == b"POST ok"
    for size in (b"-FFFF", b"+5", b"0x5", b"1_0", b" 5"):
        [(head, _)] = await exchange(
            server, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n")
        assert head.startswith(b"HTTP/1.1 400"), size
    [(head, _)] = await exchange(
        server, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelloXX0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")  # chunk data longer than its size
    [(head, _)] = await exchange(server, b"NONSENSE\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    [(head, _)] = await exchange(server, b"GET / HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in head


async def test_stop_in_order(jp_asyncio_loop):
    """No new connections, idle ones closed at once, the answer in flight given, then closed."""
    echo = Echo()
    server = HttpServer(echo, max_body=1000)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await server.start(sock)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    idle_writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.wait_for(idle_reader.readuntil(b"GET "), 5)  # answered, kept alive
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
    busy_writer.write(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
    await until(lambda: any(c.busy for c in server.connections), timeout=5,
                message="the held request to be in")
    stopping = asyncio.ensure_future(server.stop(5.0))
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # the idle one, closed at once
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert not stopping.done()  # the request in flight is waited for
    echo.release.set()
    answer = await asyncio.wait_for(busy_reader.read(), 5)  # its answer, then the close
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
    assert answer.endswith(b"held")
    await asyncio.wait_for(stopping, 5)
    assert not server.connections
    idle_writer.close()
    busy_writer.close()
