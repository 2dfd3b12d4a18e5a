"""What the gateway knows of each node and alias, and how it picks where a request goes.

The supervisor keeps the node routes up to date; an alias update swaps its route object
whole, so a request sees the old routing or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..types import InputCheck
from .upstream import Pool

MAX_BYTES = 16 * 1024 * 1024  # of a request and of its answer, for callers
UPSTREAM_BYTES = MAX_BYTES * 3 // 2  # to and from an instance: 16 MB of gRPC bytes as base64


def new_key() -> str:
    return "jd_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_opens(key: str, key_hash: str) -> bool:
    """Whether `key` is the one whose hash is stored (a public alias has none)."""
    return bool(key_hash) and hmac.compare_digest(hash_key(key), key_hash)


def _score(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest(), "big")


def sticky_point(key: str) -> float:
    """Where a sticky key falls in [0, 100): the same key, the same node."""
    return _score("point", key) % 1_000_000 / 10_000


def pick_node(weights: tuple[tuple[str, int], ...], point: float) -> str:
    """The node whose weight band holds `point` (0 <= point < 100)."""
    total = 0
    for node, weight in weights:
        total += weight
        if point < total:
            return node
    return weights[-1][0]


@dataclass
class Backend:
    """A healthy instance, as the gateway sends it requests."""

    instance_id: str
    pool: Pool
    check: InputCheck  # the inputs of the checkpoint this instance runs (updates roll)
    # where its own metrics are: "" its /metrics, a URL elsewhere, None nowhere
    telemetry: str | None = ""
    in_flight: int = 0


@dataclass
class Route:
    node: str
    key_hash: str
    sticky: dict[str, str] | None = None
    hold: bool = False  # scale to zero: hold requests until an instance is ready
    capture: dict[str, Any] | None = None  # {"percent", "limit"}: requests recorded
    backends: dict[str, Backend] = field(default_factory=dict)
    waiting: int = 0  # requests held for an instance
    missed: int = 0  # requests an alias sent elsewhere for want of an instance here
    turn: int = 0  # rotates ties between equally loaded instances
    passthrough: bool = False  # a Docker-image node: requests go to it as they came
    protocol: str = "http"  # what a Docker-image node speaks: "http" or "grpc"
    timeout_s: float = 0.0  # a request's deadline on this node; 0: the gateway's
    idle_timeout_s: float = 0.0  # idle connections to its instances are closed after this
    added: asyncio.Event = field(default_factory=asyncio.Event)

    def key_matches(self, key: str) -> bool:
        return key_opens(key, self.key_hash)

    @property
    def in_flight(self) -> int:
        """Requests being served or waiting for an instance: the node's load."""
        return self.waiting + sum(b.in_flight for b in self.backends.values())

    def pick(self, exclude: set[str], key: str | None = None) -> Backend | None:
        """With a sticky key, the instance that key ranks first (rendezvous hashing: it only
        moves when that instance goes); else the least-loaded one. `exclude`: tried already."""
        candidates = [b for b in self.backends.values() if b.instance_id not in exclude]
        if not candidates:
            return None
        if key is not None:
            return max(candidates, key=lambda b: _score(key, b.instance_id))
        self.turn += 1
        low = min(b.in_flight for b in candidates)
        least = [b for b in candidates if b.in_flight == low]
        return least[self.turn % len(least)]


class ShadowRecord:
    """How a shadow node answered mirrored requests, next to the primary's answers."""

    def __init__(self, limit: int = 200) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=limit)
        self.counts: Counter[str] = Counter()

    def add(self, entry: dict[str, Any]) -> None:
        self.recent.append(entry)
        self.counts["requests"] += 1
        self.counts["same_output" if entry["same_output"] else "different_output"] += 1
        if entry["status"] != 200:
            self.counts["errors"] += 1

    def to_json(self) -> dict[str, Any]:
        latencies = sorted(e["latency_ms"] for e in self.recent)
        return {
            **{k: self.counts[k] for k in ("requests", "same_output", "different_output",
                                           "errors")},
            "p50_ms": latencies[len(latencies) // 2] if latencies else None,
            "recent": list(self.recent)[-20:],
        }


@dataclass(frozen=True)
class AliasRoute:
    name: str
    key_hash: str
    public: bool
    weights: tuple[tuple[str, int], ...]  # nodes with a weight > 0, heaviest first
    shadow: dict[str, Any] | None
    sticky: dict[str, str] | None
    shadow_record: ShadowRecord

    def key_matches(self, key: str) -> bool:
        return key_opens(key, self.key_hash)

    def order(self, point: float) -> list[str]:
        """The node `point` picks, then the others (heaviest first) if it cannot serve."""
        first = pick_node(self.weights, point)
        return [first] + [node for node, _ in self.weights if node != first]


class Routes:
    """The routing table the supervisor keeps up to date and the gateway reads."""

    def __init__(self) -> None:
        self.nodes: dict[str, Route] = {}
        self.aliases: dict[str, AliasRoute] = {}

    def add_node(self, node: str, key_hash: str) -> Route:
        self.nodes[node] = Route(node, key_hash)
        return self.nodes[node]

    def remove_node(self, node: str) -> None:
        route = self.nodes.pop(node, None)
        if route is not None:
            route.hold = False
            self.wake(route)
            for backend in route.backends.values():
                backend.pool.close()

    def add_backend(self, node: str, instance_id: str, host: str, port: int,
                    check: InputCheck, telemetry: str | None = "") -> None:
        route = self.nodes[node]
        pool = Pool(host, port, UPSTREAM_BYTES, route.idle_timeout_s)
        route.backends[instance_id] = Backend(instance_id, pool, check, telemetry)
        self.wake(route)

    @staticmethod
    def wake(route: Route) -> None:
        """Let the requests held for an instance look again (one came, or none will)."""
        route.added.set()
        route.added = asyncio.Event()

    def remove_backend(self, node: str, instance_id: str) -> Backend | None:
        route = self.nodes.get(node)
        return route.backends.pop(instance_id, None) if route else None

    def set_alias(self, name: str, key_hash: str, public: bool, nodes: dict[str, int],
                  shadow: dict[str, Any] | None, sticky: dict[str, str] | None) -> None:
        """Install an alias's routing in one step."""
        previous = self.aliases.get(name)
        weights = tuple(sorted(((n, w) for n, w in nodes.items() if w > 0),
                               key=lambda item: (-item[1], item[0])))
        record = previous.shadow_record if previous else ShadowRecord()
        self.aliases[name] = AliasRoute(name, key_hash, public, weights, shadow, sticky, record)
