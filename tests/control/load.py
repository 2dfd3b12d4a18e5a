"""Clients calling the gateway in a loop, in a thread of their own, counting every failure
(an answer other than 200, a dropped connection, a refused one) for tests and benchmarks."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Target:
    """One endpoint of the gateway and the key and body to call it with."""

    endpoint: str
    key: str
    body: bytes


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first few, to say what happened
    latencies: list[float] = field(default_factory=list)

    def failure(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 10:
            self.failures.append(what)


class Load(threading.Thread):
    """`clients` keep-alive clients, spread over `targets`, until `stop()`."""

    def __init__(self, targets: list[Target], clients: int = 32) -> None:
        super().__init__(daemon=True)
        self.targets, self.clients = targets, clients
        self.tallies = {t.endpoint: Tally() for t in targets}
        self._stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    def stop(self) -> dict[str, Tally]:
        self._stopping.set()
        self.join(60)
        return self.tallies

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(self.targets[i % len(self.targets)])
                               for i in range(self.clients)))

    async def _client(self, target: Target) -> None:
        url = urllib.parse.urlsplit(target.endpoint)
        request = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                   f"Authorization: Bearer {target.key}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(target.body)}\r\n\r\n").encode() + target.body
        tally = self.tallies[target.endpoint]
        writer = None
        while not self._stopping.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(url.hostname, url.port)
                begun = time.perf_counter()
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
                length = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if head[9:12] == b"200":
                    tally.ok += 1
                    tally.latencies.append(time.perf_counter() - begun)
                else:
                    tally.failure(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                if b"connection: close" in head.lower():
                    writer.close()
                    writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                tally.failure(f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()


def percentile(latencies: list[float], q: float) -> float:
    """The q-quantile in milliseconds (0 when there is none)."""
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0
