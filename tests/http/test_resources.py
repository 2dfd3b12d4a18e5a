"""What a stranger's connection may cost (issue 11): memory bounded for a client that never
reads, heads closed at their deadline, caps on connections. Real sockets, real processes."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from jupyter_deploy.gateway.app import Gateway
from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.http.framing import Limits

from ..conftest import checkpoint_body, until, worker_pids

MB = 1024 * 1024
CLOSE_SLACK_S = 0.25  # 200 closes at once, and this test's own loop, on a shared machine


def rss(pids: list[int]) -> int:
    """The resident memory of these processes, in bytes, from /proc."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.fixture(scope="module")
def big_page(service):
    """A node whose answer is a 1 MB page."""
    body = checkpoint_body("strict-bigpage", "page = 'x' * 1_000_000", "", "page")
    node, key = service.create_node("strict-bigpage", body, min=1)
    yield node, key
    service.client.delete_node("strict-bigpage")


def test_a_client_that_never_reads_costs_bounded_memory(service, big_page):
    _, key = big_page
    url = urlsplit(service.gateway_url)
    request = (b"POST /v1/nodes/strict-bigpage:execute HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
               + key.encode() + b"\r\nContent-Length: 13\r\n\r\n{\"input\": {}}")
    pids = [service.process.pid, *worker_pids(service.state_dir)]
    with socket.create_connection((url.hostname, url.port)) as warm:
        warm.sendall(request)
        assert warm.recv(12) == b"HTTP/1.1 200"
    before = rss(pids)
    sockets = [socket.create_connection((url.hostname, url.port)) for _ in range(4)]
    try:
        for sock in sockets:  # 200 pipelined requests each (some 40 KB), never read
            sock.sendall(request * 200)
        peak, deadline = before, time.monotonic() + 5
        while time.monotonic() < deadline:  # the window in which it would grow unbounded
            peak = max(peak, rss(pids))
            time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()
    grown = (peak - before) / MB
    print(f"\nRSS of the service and its instance: {before / MB:.1f} MB before, "
          f"peak {peak / MB:.1f} MB (+{grown:.1f} MB) with 800 pipelined 1 MB answers unread")
    assert grown <= 20
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)  # and it still serves
        assert sock.recv(12) == b"HTTP/1.1 200"


async def timed_get(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    return time.perf_counter() - started


def p99(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.99) - 1]


async def slow_head(port: int) -> tuple[float, bytes]:
    """Send a head at one byte a second; (seconds until the server closed, what it said).
    The second byte goes after half a second, so that no byte is sent just as the server
    closes at a whole second (the server would answer it with a reset, losing the 408)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()

    async def until_closed() -> tuple[float, bytes]:
        said = await reader.read()
        return time.perf_counter() - started, said

    answer = asyncio.ensure_future(until_closed())
    for i, byte in enumerate(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 60):
        writer.write(bytes([byte]))
        if (await asyncio.wait([answer], timeout=0.5 if i == 0 else 1.0))[0]:
            break
    writer.close()
    return await answer


async def test_slow_heads_are_closed_at_the_head_deadline(jp_asyncio_loop):
    gateway = Gateway(Routes(), limits=Limits(head_timeout_s=2.0))
    port = await gateway.listen("127.0.0.1", 0)
    try:
        baseline = [await timed_get(port) for _ in range(100)]
        slow = [asyncio.ensure_future(slow_head(port)) for _ in range(200)]
        await until(lambda: len(gateway.http.connections) >= 200,  # type: ignore[union-attr]
                    timeout=10, message="the slow clients to connect")
        during = [await timed_get(port) for _ in range(100)]
        closed = await asyncio.gather(*slow)
    finally:
        await gateway.stop(1.0)
    times = sorted(seconds for seconds, _ in closed)
    print(f"\n200 heads at 1 byte/s, head deadline 2 s: closed after {times[0]:.2f} to "
          f"{times[-1]:.2f} s; /healthz p99 {p99(baseline) * 1000:.1f} ms alone, "
          f"{p99(during) * 1000:.1f} ms meanwhile")
    assert all(said.startswith(b"HTTP/1.1 408") for _, said in closed)
    assert times[0] >= 2.0 and times[-1] <= 2.0 + CLOSE_SLACK_S  # at the deadline, not later
    assert p99(during) <= max(2 * p99(baseline), 0.05)


async def test_a_client_that_reads_nothing_is_dropped(jp_asyncio_loop):
    gateway = Gateway(Routes(), limits=Limits(stall_timeout_s=1.0))
    port = await gateway.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/docs/static/swagger-ui-bundle.js HTTP/1.1\r\nHost: t\r\n\r\n" * 100)
        await until(lambda: not gateway.http.connections,  # type: ignore[union-attr]
                    timeout=5, message="the stalled connection to be dropped")
        writer.close()
    finally:
        await gateway.stop(1.0)


async def test_connections_are_capped_per_client_address(jp_asyncio_loop):
    gateway = Gateway(Routes(), limits=Limits(max_per_client=3))
    port = await gateway.listen("127.0.0.1", 0)
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(reader.read(), 5)
        assert refused.startswith(b"HTTP/1.1 503") and b"max_per_client" in refused
        writer.close()
        held[0][1].close()  # one goes: a new one is let in
        await asyncio.wait_for(held[0][0].read(), 5)
        await until(lambda: len(gateway.http.connections) < 3,  # type: ignore[union-attr]
                    timeout=5, message="the closed connection to be counted out")
        assert await timed_get(port) < 5
    finally:
        for _, other in held:
            other.close()
        await gateway.stop(1.0)
