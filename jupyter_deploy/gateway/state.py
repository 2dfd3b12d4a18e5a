"""The routing state as data: what the service sends its gateway workers, and how a worker
applies it.

The service describes its routes whole (`describe`): nodes with their settings, key hashes
and healthy instances, aliases with weights, shadows and sticky rules, and the checkpoint
metadata the pages, the typed gRPC services and the Open Inference Protocol are made of.
A worker applies a description in one synchronous step (`apply`), so a request sees the
old routing or the new one, never a mix; input checks are rebuilt from the declared inputs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..models import InstanceStatus
from ..types import InputCheck
from .board import MAX_INSTANCES, MAX_NODES, Board
from .routing import Route, Routes

NO_INPUTS = InputCheck([])  # a Docker-image node's requests carry no declared inputs
ROUTE_FIELDS = ("sticky", "hold", "capture", "passthrough", "protocol", "timeout_s",
                "idle_timeout_s", "slots", "max_queue", "expose_tracebacks")


@dataclass(frozen=True)
class NodeInfo:
    """What the gateway pages and the gRPC services read of a node."""

    name: str
    from_image: bool
    checkpoint_id: str
    checkpoint: str  # NAME@VERSION


@dataclass(frozen=True)
class InstanceInfo:
    """What the Open Inference Protocol reads of an instance: the checkpoint it runs."""

    id: str
    checkpoint_id: str


class Rows:
    """Rows of the workers' board (board.py) for nodes or instances: kept while they exist;
    a row let go is taken again only after every other one (requests may still drain)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: dict[str, int] = {}
        # from anywhere: rows a previous service gave may still drain
        self.next = secrets.randbelow(limit)

    def assign(self, names: list[str]) -> dict[str, int]:
        """The row of each of `names` (-1: the board is full); the others' rows are freed."""
        self.rows = {name: row for name, row in self.rows.items() if name in set(names)}
        taken = set(self.rows.values())
        for name in names:
            if name in self.rows:
                continue
            row = -1
            for _ in range(self.limit if len(taken) < self.limit else 0):
                candidate, self.next = self.next, (self.next + 1) % self.limit
                if candidate not in taken:
                    row = candidate
                    break
            self.rows[name] = row
            taken.add(row)
        return self.rows


# Statuses of an instance on its way into balancing. Just after a start, while one of them
# is being taken back, the gateway workers keep serving those they had.
PENDING = (InstanceStatus.UNDEFINED, InstanceStatus.CREATED, InstanceStatus.STARTED,
           InstanceStatus.PREPARING)


def describe(routes: Routes, nodes: Mapping[str, Any], instances: Mapping[str, Mapping[str, Any]],
             meta: Callable[[str], dict[str, Any]],
             versions: Callable[[str], list[dict[str, Any]]],
             settling: bool = False, rows: tuple[Rows, Rows] | None = None) -> dict[str, Any]:
    """The whole routing state (service side): `nodes` and `instances` are the supervisor's.
    `settling`: the service has just started and is taking instances back; until it has
    checked them, a worker keeps those it serves (see `Applied.apply`), but never one the
    service is stopping or found unhealthy."""
    described: dict[str, Any] = {}
    used: set[str] = set()
    for name, route in list(routes.nodes.items()):
        node = nodes.get(name)
        group = instances.get(name, {})
        running = {i: group[i].checkpoint_id for i in list(group)}
        used.update(running.values())
        if node is not None and not node.from_image:
            used.add(node.checkpoint_id)
        described[name] = {
            "key_hash": route.key_hash,
            **{name: getattr(route, name) for name in ROUTE_FIELDS},
            "node": None if node is None else [node.from_image, node.checkpoint_id,
                                               node.checkpoint],
            "instances": running,
            "keep": [i for i in list(group) if group[i].status in PENDING] if settling else [],
            "batch": route.batch,
            "backends": [[b.instance_id, b.pool.host, b.pool.port, running.get(b.instance_id),
                          b.telemetry, b.stuck, b.pool.instance_token]
                         for b in list(route.backends.values())],
        }
    node_rows, instance_rows = rows or (Rows(MAX_NODES), Rows(MAX_INSTANCES))
    by_node = node_rows.assign(list(described))
    by_instance = instance_rows.assign(
        [b[0] for spec in described.values() for b in spec["backends"]])
    for name, spec in described.items():
        spec["row"] = by_node[name]
        for backend in spec["backends"]:
            backend.append(by_instance[backend[0]])
    used.discard("")
    metas = {checkpoint_id: meta(checkpoint_id) for checkpoint_id in sorted(used)}
    names = {m["name"] for m in metas.values()}
    return {
        "nodes": described,
        "aliases": {name: {"key_hash": a.key_hash, "public": a.public, "nodes": dict(a.weights),
                           "shadow": a.shadow, "sticky": a.sticky}
                    for name, a in list(routes.aliases.items())},
        "checkpoints": metas,
        "versions": {name: [{"id": c["id"], "version": c["version"]} for c in versions(name)]
                     for name in sorted(names)},
        "settling": settling,  # what workers of the previous version read
    }


class Applied:
    """A worker's routing state: the routes it serves from and what its pages read."""

    def __init__(self, routes: Routes, board: Board | None = None) -> None:
        self.routes = routes
        self.board = board  # shared with the other workers: their requests and queues
        self.nodes: dict[str, NodeInfo] = {}
        self.instances: dict[str, dict[str, InstanceInfo]] = {}
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.checks: dict[str, InputCheck] = {}  # checkpoint id -> its check (immutable)
        self.version = 0  # of the last state applied; 0: none yet

    def apply(self, state: dict[str, Any], version: int) -> None:
        """Install `state` in one step (no await here: requests see all of it or none)."""
        routes = self.routes
        self.checkpoints = state["checkpoints"]
        self.versions = state["versions"]
        self.checks = {i: c for i, c in self.checks.items() if i in self.checkpoints}
        wanted = state["nodes"]
        for name in [n for n in routes.nodes if n not in wanted]:
            routes.remove_node(name)
        nodes, instances = {}, {}
        for name, spec in wanted.items():
            route = routes.nodes.get(name)
            if route is None or route.key_hash != spec["key_hash"]:
                if route is not None:
                    routes.remove_node(name)
                route = routes.add_node(name, spec["key_hash"])
            # a restarted service checks the instances it takes back before they are in its
            # routes again: meanwhile those the worker serves stay (issue 13: no request fails)
            self._configure(route, spec, set(spec.get("keep", ())))
            if spec["node"] is not None:
                nodes[name] = NodeInfo(name, *spec["node"])
            instances[name] = {i: InstanceInfo(i, c) for i, c in spec["instances"].items()}
        self.nodes, self.instances = nodes, instances
        for name in [a for a in routes.aliases if a not in state["aliases"]]:
            routes.remove_alias(name)
        for name, alias in state["aliases"].items():
            routes.set_alias(name, alias["key_hash"], alias["public"], alias["nodes"],
                             alias["shadow"], alias["sticky"])
        self.version = version

    def _configure(self, route: Route, spec: dict[str, Any], keep: set[str]) -> None:
        """The node's settings and instances, as the service has them (and `keep`)."""
        for name in ROUTE_FIELDS:
            setattr(route, name, spec[name])
        if route.batch != spec["batch"]:
            route.configure_batch(spec["batch"])
        if self.board is not None and route.row != spec["row"]:
            if route.board is not None:  # a new service gave it another row
                self.board.queue(route.row, 0, 0.0)
            route.board, route.row = self.board, spec["row"]
            route.post()
        if not route.hold:
            self.routes.wake(route)  # requests held until now get their answer
        backends = {b[0]: b for b in spec["backends"]}
        for instance_id in [i for i in route.backends if i not in backends and i not in keep]:
            self.routes.remove_backend(route.node, instance_id)
        for instance_id, host, port, checkpoint_id, telemetry, stuck, token, row in \
                backends.values():
            backend = route.backends.get(instance_id)
            if backend is None or (backend.pool.host, backend.pool.port) != (host, port):
                self.routes.add_backend(route.node, instance_id, host, port,
                                        self.check(checkpoint_id), telemetry, token)
                backend = route.backends[instance_id]
            if self.board is not None and backend.row != row:
                count = backend.local
                backend.add(-count)  # off its old row, onto the new one
                backend.board, backend.row = self.board, row
                backend.add(count)
            if backend.stuck != stuck:
                route.set_stuck(backend, stuck)
        route.wake_waiters()  # the slots may have changed

    def check(self, checkpoint_id: str | None) -> InputCheck:
        """The check of a checkpoint's declared inputs, built once."""
        if not checkpoint_id or checkpoint_id not in self.checkpoints:
            return NO_INPUTS
        check = self.checks.get(checkpoint_id)
        if check is None:
            check = self.checks[checkpoint_id] = InputCheck(
                self.checkpoints[checkpoint_id]["inputs"])
        return check

    def meta(self, checkpoint_id: str) -> dict[str, Any]:
        """A checkpoint's metadata, as the service sent it."""
        return self.checkpoints[checkpoint_id]

    def describe(self, kind: str, name: str) -> tuple[dict[str, Any], bool] | None:
        """The checkpoint a node serves (an alias: its heaviest node's), and whether it is
        public: as `Examples.describe` in the service."""
        return served(self.routes, self.nodes, self.checkpoints.get, kind, name)


def served(routes: Routes, nodes: Mapping[str, Any], meta: Callable[[str], dict[str, Any] | None],
           kind: str, name: str) -> tuple[dict[str, Any], bool] | None:
    """The checkpoint a node serves (for an alias: its heaviest node's, named in "node"), and
    whether it is public; None for a Docker-image node, or one whose checkpoint `meta` does
    not know."""
    public = False
    if kind == "alias":
        alias = routes.aliases.get(name)
        if alias is None or not alias.weights:
            return None
        name, public = alias.weights[0][0], alias.public
    node = nodes.get(name)
    if node is None or node.from_image:
        return None
    checkpoint = meta(node.checkpoint_id)
    if checkpoint is None:
        return None
    return {**checkpoint, "ref": node.checkpoint, "node": node.name}, public
