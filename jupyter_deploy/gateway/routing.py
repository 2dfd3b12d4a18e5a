"""What the gateway knows of each node and alias, and how it picks where a request goes.

The supervisor keeps the node routes up to date; an alias update swaps its route object
whole, so a request sees the old routing or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import secrets
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..types import InputCheck
from .backends import Backend as Backend  # where the supervisor and the gateway import it
from .backends import Turn
from .board import Board
from .board import now as board_now
from .shadow import ShadowRecord
from .upstream import Pool

MAX_BYTES = 16 * 1024 * 1024  # of a request and of its answer, for callers
UPSTREAM_BYTES = MAX_BYTES * 3 // 2  # to and from an instance: 16 MB of gRPC bytes as base64
# A node's default queue: this many requests per slot. What would miss its deadline is
# refused by time (WAIT_SHARE); the count bounds what waiting requests hold (bodies of up to
# 16 MB each) and leaves room for a burst: 32 callers of one instance wait for their turn.
QUEUE_FACTOR = 32
# An instance runs one request at a time, but is sent more while they would all be done within
# PIPELINE_S (50 ms): for a cheap cell the hops to and from it then overlap its runs (sent one at a
# time, c=32 on one instance fell from about 4,000 to 1,400 requests/s). A slow cell gets only
# its slots, so that the queue, which knows deadlines, holds the rest.
PIPELINE_S = 0.05
MAX_PIPELINE = 64
WAIT_SHARE = 0.5  # of its time left, the most a request is expected to wait in the queue
SERVICE_WEIGHT = 0.2  # of the newest answer in the running mean of a node's service time
POLL_S = 0.001  # with requests waiting, how often a gateway worker looks at the board


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


class QueueFull(Exception):
    """The node's queue is at its bound, or could not serve the request in time (429)."""


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
    slots: int = 1  # requests an instance is sent at once (its target concurrency), at least
    max_queue: int | None = None  # requests waiting for a slot; None: QUEUE_FACTOR per slot
    expose_tracebacks: bool = False  # anonymous callers of a public alias see them too
    # a batching node (issue 18): its instances are sent max_size requests at once, each
    # with this head field, so that one run of the cell serves them all
    batch: dict[str, Any] | None = None
    batch_size: int = 0
    batch_head: bytes = b""
    queue: deque[Turn] = field(default_factory=deque)
    service_s: float = 0.0  # running mean of the time a request takes on an instance; 0: none
    # set by Routes: a request ran past the request timeout there; a request was refused
    on_stuck: Callable[[Backend], None] = lambda backend: None
    reject: Callable[[str], None] = lambda reason: None
    on_change: Callable[[], None] = lambda: None  # set by Routes: what workers see changed
    reported: int = 0  # requests the gateway workers hold waiting (gateway/hub.py)
    board: Board | None = None  # in a gateway worker: the other workers' queues of the node
    row: int = -1
    polling: asyncio.Task[None] | None = None  # looks for slots the other workers freed

    def key_matches(self, key: str) -> bool:
        return key_opens(key, self.key_hash)

    @property
    def in_flight(self) -> int:
        """Requests being served or waiting for an instance: the node's load."""
        return self.waiting + len(self.queue) + self.reported + sum(
            b.in_flight for b in self.backends.values())

    def queued(self) -> int:
        """Requests waiting for a slot, in every gateway worker."""
        if self.board is None:
            return len(self.queue)
        return len(self.queue) + self.board.waiting_elsewhere(self.row)

    def first_elsewhere(self) -> bool:
        """Whether a request of another worker waits since before this one's first."""
        if self.board is None:
            return False
        head = self.queue[0].since if self.queue else board_now()
        return self.board.oldest_elsewhere(self.row) < head

    @property
    def queue_limit(self) -> int:
        """How many requests may wait for a slot before the node answers 429."""
        if self.max_queue is not None:
            return self.max_queue
        return QUEUE_FACTOR * self.slots * max(1, len(self.backends))

    @property
    def per_instance(self) -> int:
        """Requests an instance is sent at once: its slots, and more while they would all be
        done within PIPELINE_S (by the mean service time; none more while it is unknown)."""
        if not self.service_s:
            return max(self.slots, self.batch_size)
        return max(self.slots, self.batch_size,
                   min(MAX_PIPELINE, int(PIPELINE_S / self.service_s)))

    def served(self, seconds: float, answered: bool = True) -> None:
        """Count one request's time on an instance into the node's mean service time. On
        an answer, the waiters that would not be admitted now (a first burst, before any
        answer came) are refused (QueueFull) at once rather than left to miss their
        deadline; a timeout refuses none (they wait out their own deadline)."""
        self.service_s = seconds if not self.service_s else (
            self.service_s + SERVICE_WEIGHT * (seconds - self.service_s))
        slots = self.per_instance * sum(not b.stuck for b in self.backends.values())
        if not answered or not self.queue or not slots:
            return
        now = asyncio.get_running_loop().time()
        position = 0
        for turn in self.queue:
            if turn.done():
                continue
            position += 1
            if position * self.service_s / slots > WAIT_SHARE * (turn.deadline - now):
                turn.set_exception(QueueFull(self.node))
                position -= 1  # it leaves: those behind it move up

    def expected_wait(self) -> float:
        """Seconds a request joining the queue now should wait for a slot (0: unknown)."""
        slots = self.per_instance * sum(not b.stuck for b in self.backends.values())
        return (self.queued() + 1) * self.service_s / slots if slots else 0.0

    def has_instance(self, exclude: set[str]) -> bool:
        """Whether an instance not in `exclude` exists, in balancing or not (stuck)."""
        return any(b not in exclude for b in self.backends)

    def free(self, backend: Backend) -> bool:
        """Whether `backend` has a slot for one more request."""
        return backend.in_flight < self.per_instance and not backend.stuck

    def wake_waiters(self, every: bool = False) -> None:
        """Give the slots free now to the requests first in the queue (`every`: wake them
        all, to look again: the last instance went)."""
        if not self.queue or not every and self.first_elsewhere():
            return
        free = len(self.queue) if every else sum(
            max(0, self.per_instance - b.in_flight) for b in self.backends.values()
            if not b.stuck)
        while free > 0 and self.queue:
            turn = self.queue.popleft()
            if not turn.done():
                turn.set_result(None)
                free -= 1
        self.post()

    def post(self) -> None:
        """Put this worker's queue of the node on the board; while it has requests waiting,
        look every POLL_S for a slot another worker freed (they cannot wake this one)."""
        if self.board is None:
            return
        self.board.queue(self.row, len(self.queue), self.queue[0].since if self.queue else 0.0)
        if self.queue and (self.polling is None or self.polling.done()):
            self.polling = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while self.queue:
            await asyncio.sleep(POLL_S)
            self.wake_waiters()

    async def wait_turn(self, deadline: float, first: bool = False) -> None:
        """Wait in the queue for a slot, by the loop's `deadline`; `first`: at its head (it
        was woken, and another request took the slot). Raises TimeoutError at the deadline."""
        turn = Turn(deadline)
        if first:
            self.queue.appendleft(turn)
        else:
            self.queue.append(turn)
        self.post()
        try:
            async with asyncio.timeout_at(deadline):
                await turn.future
        except BaseException:
            if turn.woken():
                self.wake_waiters()  # woken as it gave up: the slot goes to the next one
            with contextlib.suppress(ValueError):
                self.queue.remove(turn)
            self.post()
            raise

    def set_stuck(self, backend: Backend, stuck: bool) -> None:
        """Take `backend` out of balancing (a request ran past the timeout), or put it back."""
        backend.stuck = stuck
        self.on_change()
        if not stuck:
            self.wake_waiters()

    def configure_admission(self, target_concurrency: float, max_queue: int | None) -> None:
        """Slots per instance from the node's target concurrency, and its queue's bound."""
        self.slots = max(1, math.ceil(target_concurrency))
        self.max_queue = max_queue
        self.on_change()
        self.wake_waiters()

    def configure_batch(self, batch: dict[str, Any] | None) -> None:
        """A batching node's {"max_size", "max_wait_ms"}, or None: not batching."""
        self.batch = batch
        self.batch_size = batch["max_size"] if batch else 0
        self.batch_head = b"x-batch: %d %g\r\n" % (batch["max_size"], batch["max_wait_ms"]) \
            if batch else b""
        self.on_change()
        self.wake_waiters()

    def pick(self, exclude: set[str], key: str | None = None) -> Backend | None:
        """With a sticky key, the instance that key ranks first (rendezvous hashing: it only
        moves when that instance goes); else the least-loaded one. `exclude`: tried already.
        Instances out of balancing (stuck) are never picked."""
        candidates = [b for b in self.backends.values()
                      if b.instance_id not in exclude and not b.stuck]
        if not candidates:
            return None
        if key is not None:
            return max(candidates, key=lambda b: _score(key, b.instance_id))
        self.turn += 1
        loads = [(b.in_flight, b) for b in candidates]  # read once: other workers change them
        low = min(load for load, _ in loads)
        least = [b for load, b in loads if load == low]
        return least[self.turn % len(least)]


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
        # (node, instance id): a request ran past the request timeout there (the supervisor)
        self.on_stuck: list[Callable[[str, str], None]] = []
        # (node, reason): admission control answered a request without running it (metrics)
        self.on_reject: list[Callable[[str, str], None]] = []
        self.on_shadow: list[Callable[[str, dict[str, Any]], None]] = []  # (alias, entry)
        # called on every change the gateway workers must see (none: an in-process gateway)
        self.on_change: Callable[[], None] = lambda: None
        # waits until every gateway worker serves the routes as they are now (the hub)
        self.applied: Callable[[], Awaitable[object]] = applied_at_once
        # instance id -> a backend out of the routes, draining
        self.removed: weakref.WeakValueDictionary[str, Backend] = weakref.WeakValueDictionary()

    def add_node(self, node: str, key_hash: str) -> Route:
        route = self.nodes[node] = Route(node, key_hash)
        route.on_stuck, route.reject = partial(self.stuck, route), partial(self.reject, node)
        route.on_change = self.changed
        self.changed()
        return route

    def changed(self) -> None:  # looked up at each call: the hub sets on_change later
        self.on_change()

    def remove_node(self, node: str) -> None:
        route = self.nodes.pop(node, None)
        if route is not None:
            route.hold = False
            self.wake(route)
            route.wake_waiters(every=True)
            for backend in route.backends.values():
                backend.pool.close()
            self.changed()

    def add_backend(self, node: str, instance_id: str, host: str, port: int,
                    check: InputCheck, telemetry: str | None = "", token: str = "") -> None:
        route = self.nodes[node]
        pool = Pool(host, port, UPSTREAM_BYTES, route.idle_timeout_s, token)
        route.backends[instance_id] = Backend(instance_id, pool, check, telemetry, node=node)
        self.changed()
        self.wake(route)
        route.wake_waiters()

    @staticmethod
    def wake(route: Route) -> None:
        """Let the requests held for an instance look again (one came, or none will)."""
        route.added.set()
        route.added = asyncio.Event()

    def remove_backend(self, node: str, instance_id: str) -> Backend | None:
        route = self.nodes.get(node)
        if route is None:
            return None
        backend = route.backends.pop(instance_id, None)
        if backend is not None:  # the gateway workers may still have requests on it
            self.removed[instance_id] = backend
            self.changed()
        if not route.backends:
            route.wake_waiters(every=True)  # none left: the queue gets its answer now
        return backend

    def stuck(self, route: Route, backend: Backend) -> None:
        """A request ran past the request timeout on `backend`: out of balancing at once,
        and the supervisor is told (it puts it back when the cell ends, or replaces it)."""
        if route.backends.get(backend.instance_id) is not backend or backend.stuck:
            return
        route.set_stuck(backend, True)
        for listener in self.on_stuck:
            listener(route.node, backend.instance_id)

    def reject(self, node: str, reason: str) -> None:
        """Count a request admission control answered without running it."""
        for listener in self.on_reject:
            listener(node, reason)

    def set_alias(self, name: str, key_hash: str, public: bool, nodes: dict[str, int],
                  shadow: dict[str, Any] | None, sticky: dict[str, str] | None) -> None:
        """Install an alias's routing in one step."""
        previous = self.aliases.get(name)
        weights = tuple(sorted(((n, w) for n, w in nodes.items() if w > 0),
                               key=lambda item: (-item[1], item[0])))
        record = previous.shadow_record if previous else ShadowRecord()
        self.aliases[name] = AliasRoute(name, key_hash, public, weights, shadow, sticky, record)
        self.changed()

    def remove_alias(self, name: str) -> None:
        """Forget an alias: its callers get 404 from now on."""
        if self.aliases.pop(name, None) is not None:
            self.changed()


async def applied_at_once() -> None:
    """An in-process gateway serves a change of the routes as it is made."""
