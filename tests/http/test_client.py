"""The client side of the HTTP layer against a raw server on a real socket (issue 11): answers
framed by status and method, and a pooled connection reused only when read exactly."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_deploy.gateway.upstream import Pool
from jupyter_deploy.http.client import UpstreamError

GET = b"GET / HTTP/1.1\r\nHost: t\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: t\r\n"


class Scripted:
    """A server that answers the n-th request on any connection with ANSWERS[n], as bytes."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(self.answers.pop(0))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
def scripted(jp_asyncio_loop):
    created = []

    async def start(answers: list[bytes]) -> tuple[Scripted, Pool]:
        server = Scripted(answers)
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        created.append(listening)
        return server, Pool("127.0.0.1", listening.sockets[0].getsockname()[1], 1 << 20)

    yield start
    for listening in created:
        listening.close()


async def test_answers_without_a_body(scripted):
    server, pool = await scripted([
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",  # to HEAD: no body follows
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n"])
    for head, expected in [(GET, (204, b"")), (HEAD, (200, b"")), (GET, (304, b"")),
                           (GET, (200, b"ok")), (GET, (200, b"hi"))]:
        status, headers, body = await asyncio.wait_for(pool.request(head, b""), 5)
        assert (status, body) == expected
    assert server.connections == 1  # each read exactly: one connection for all


async def test_bytes_nobody_asked_for_close_the_connection(scripted):
    server, pool = await scripted([
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nright"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"])
    assert (await asyncio.wait_for(pool.request(GET, b""), 5))[2] == b"right"
    assert (await asyncio.wait_for(pool.request(GET, b""), 5))[2] == b"next"
    assert server.connections == 2
    server, pool = await scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nXY",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"])
    await asyncio.wait_for(pool.request(HEAD, b""), 5)  # bytes after an answer to HEAD
    assert (await asyncio.wait_for(pool.request(GET, b""), 5))[2] == b"1"
    assert server.connections == 2


@pytest.mark.parametrize("length", [b"-3", b"+5", b"0x5", b"5, 6"])
async def test_malformed_lengths_fail(scripted, length):
    _, pool = await scripted([b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabcdef"])
    with pytest.raises(UpstreamError):
        await asyncio.wait_for(pool.request(GET, b""), 5)


async def test_repeated_fields_stay_apart(scripted):
    _, pool = await scripted([b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2, c\r\n"
                              b"Content-Length: 0\r\n\r\n"])
    _, headers, _ = await asyncio.wait_for(pool.request(GET, b""), 5)
    assert [v for n, v in headers.raw if n == "Set-Cookie"] == ["a=1", "b=2, c"]  # type: ignore[attr-defined]
