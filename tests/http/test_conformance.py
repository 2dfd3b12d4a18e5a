"""Strict HTTP/1.1 (RFC 9112 / 9110) on real sockets, for the gateway and a worker (issue 11):
every framing case gets the answer in CASES, and the connection closes after a refusal."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

import pytest

from ..conftest import checkpoint_body

GOOD = b"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"
# name -> (the request's bytes, the status it gets); {path} is a GET page of the target
CASES: dict[str, tuple[bytes, int]] = {
    "Content-Length with Transfer-Encoding": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "Transfer-Encoding: xchunked": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    "Transfer-Encoding: gzip (no chunked)": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "Transfer-Encoding: chunked, identity": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
    "Transfer-Encoding: chunked, chunked": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    "Transfer-Encoding: gzip, chunked (unknown coding)": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"0\r\n\r\n", 501),
    "bare LF in a value": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A: a\nb\r\n\r\n", 400),
    "bare CR in a value": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400),
    "NUL in a value": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    "space in a field name": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX A: b\r\n\r\n", 400),
    "space before the colon": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n", 400),
    "obsolete line folding": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
    "HTTP/1.1 without Host": (b"GET {path} HTTP/1.1\r\n\r\n", 400),
    "two Host fields": (b"GET {path} HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400),
    "HTTP/1.9": (b"GET {path} HTTP/1.9\r\nHost: t\r\n\r\n", 505),
    "HTTP/2.0 over HTTP/1": (b"GET {path} HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    "HTTP/0.9 request line": (b"GET {path}\r\n", 400),
    "HTTP/0.9 with a version": (b"GET {path} HTTP/0.9\r\n\r\n", 400),
    "LF-only head": (b"GET {path} HTTP/1.1\nHost: t\n\n", 400),
    "Content-Length: -3": (b"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\n", 400),
    "Content-Length: +5": (b"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\n", 400),
    "two Content-Length values": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400),
    "chunk size -FFFF": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-FFFF\r\n", 400),
    "a 2 MB trailer": (
        b"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: "
        + b"t" * (2 << 20) + b"\r\n\r\n", 431),
    "a 100 KB head": (b"GET {path} HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n",
                      431),
    "a valid request": (GOOD, 200),
}


def read_answer(sock: socket.socket, timeout: float = 5.0) -> tuple[int, bytes, bool]:
    """(status, head, whether the connection closed after the answer) of one answer."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed without an answer after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    try:
        closed = sock.recv(65536) == b""
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        closed = True
    return int(head.split(b" ")[1]), head, closed


def send(address: tuple[str, int], data: bytes) -> tuple[int, bytes, bool]:
    with socket.create_connection(address, timeout=5) as sock:
        # refused before it was all sent: the answer is still there to read
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_answer(sock, timeout=2.0)


@pytest.fixture(scope="module")
def counter(service):
    """A node whose every run is counted in the instance's state."""
    body = checkpoint_body("strict-counter", "runs.append(x)\nn = len(runs)", "x:float", "n",
                           state={"runs": []}, x=1.0)
    node, key = service.create_node("strict-counter", body, min=1)
    yield node, key
    service.client.delete_node("strict-counter")


@pytest.fixture(scope="module", params=["gateway", "worker"])
def target(request, service, counter) -> tuple[tuple[str, int], str]:
    """The address and a GET page of the gateway, or of the counter's one instance."""
    if request.param == "gateway":
        url = urlsplit(service.gateway_url)
        return (url.hostname, url.port), "/healthz"
    instance = counter[0]["instances"][0]
    return (instance["host"], instance["port"]), "/livez"


@pytest.mark.parametrize("case", list(CASES))
def test_framing(target, case):
    address, path = target
    data, expected = CASES[case]
    status, head, closed = send(address, data.replace(b"{path}", path.encode()))
    assert status == expected, head
    if expected != 200:
        assert closed and b"Connection: close" in head, head


def execute(key: str, x: int, connection: str = "keep-alive") -> bytes:
    body = b'{"input": {"x": %d}}' % x
    return (b"POST /v1/nodes/strict-counter:execute HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + key.encode() + b"\r\nConnection: " + connection.encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def runs(service, key: str) -> int:
    """How many times the counter's cell ran, this call included."""
    url = urlsplit(service.gateway_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(execute(key, 0, "close"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.rsplit(b'"n": ', 1)[1].split(b"}")[0])


@pytest.mark.parametrize("connection", ["close", "keep-alive, Close", "TE, close"])
def test_nothing_after_connection_close_is_run(service, counter, connection):
    _, key = counter
    before = runs(service, key)
    url = urlsplit(service.gateway_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(execute(key, 1, connection) + execute(key, 2) + execute(key, 3))
        status, head, closed = read_answer(sock)
    assert status == 200 and closed and b"Connection: close" in head
    # the pipelined ones would have gone to the instance as the first answer was written
    assert runs(service, key) == before + 2  # ours, and this one


def test_pipelined_requests_after_keep_alive_are_answered(service, counter):
    _, key = counter
    url = urlsplit(service.gateway_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(execute(key, 1) + execute(key, 2) + execute(key, 3, "close"))
        data = b""
        while chunk := sock.recv(65536):  # until the close that the third one asked for
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3 and data.count(b"Connection: close") == 1


def test_deep_json_is_refused_naming_the_limit(service, counter):
    _, key = counter
    body = b'{"input": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    url = urlsplit(service.gateway_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/nodes/strict-counter:execute HTTP/1.1\r\nHost: t\r\nAuthorization: "
                     b"Bearer " + key.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body)
        sock.settimeout(5)
        data = b""
        while b"}}" not in data:
            data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400") and b"max_json_depth" in data
