"""What the gateway knows of each node: its key, its inputs and its healthy instances."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from .upstream import Pool, SendFailed

MAX_BYTES = 16 * 1024 * 1024


def new_key() -> str:
    return "jd_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Backend:
    """A healthy instance, as the gateway sends it requests."""

    instance_id: str
    pool: Pool
    in_flight: int = 0


@dataclass
class Route:
    node: str
    key_hash: str
    inputs: list[dict[str, str]]
    backends: dict[str, Backend] = field(default_factory=dict)
    turn: int = 0  # rotates ties between equally loaded instances

    def key_matches(self, key: str) -> bool:
        return hmac.compare_digest(hash_key(key), self.key_hash)

    def pick(self, exclude: set[str]) -> Backend | None:
        """The least-loaded healthy instance not in `exclude`."""
        candidates = [t for t in self.backends.values() if t.instance_id not in exclude]
        if not candidates:
            return None
        self.turn += 1
        low = min(t.in_flight for t in candidates)
        least = [t for t in candidates if t.in_flight == low]
        return least[self.turn % len(least)]


class NoInstance(Exception):
    """No healthy instance could take the request."""


class Routes:
    """The routing table the supervisor keeps up to date and the gateway reads."""

    def __init__(self) -> None:
        self.nodes: dict[str, Route] = {}

    def add_node(self, node: str, key_hash: str, inputs: list[dict[str, str]]) -> None:
        self.nodes[node] = Route(node, key_hash, inputs)

    def remove_node(self, node: str) -> None:
        route = self.nodes.pop(node, None)
        for backend in (route.backends.values() if route else ()):
            backend.pool.close()

    def add_backend(self, node: str, instance_id: str, host: str, port: int) -> None:
        self.nodes[node].backends[instance_id] = Backend(instance_id, Pool(host, port, MAX_BYTES))

    def remove_backend(self, node: str, instance_id: str) -> Backend | None:
        route = self.nodes.get(node)
        return route.backends.pop(instance_id, None) if route else None

    async def execute(
        self, route: Route, body: bytes, timeout: float
    ) -> tuple[int, bytes, str]:
        """Run the cell on the least-loaded instance; retry elsewhere only if nothing was sent."""
        tried: set[str] = set()
        head = b"POST /execute HTTP/1.1\r\nHost: instance\r\nContent-Type: application/json\r\n"
        while True:
            backend = route.pick(tried)
            if backend is None:
                raise NoInstance(route.node)
            tried.add(backend.instance_id)
            backend.in_flight += 1
            try:
                async with asyncio.timeout(timeout):
                    status, _, data = await backend.pool.request(head, body)
                return status, data, backend.instance_id
            except SendFailed:
                continue
            finally:
                backend.in_flight -= 1
