"""Watching what runs: the event stream, instance logs (and following them), captured
requests, the instances' own metrics and each node's metric history."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..gateway.app import Gateway
from ..gateway.capture import Recorder, captured
from ..gateway.metrics import BUCKETS
from ..gateway.routing import Route, Routes
from ..models import Instance, InvalidInput, NotFound
from ..runtimes.base import Runtime, Runtimes
from ..runtimes.docker import DockerRuntime
from ..runtimes.logfiles import Follower, has_request_id
from ..store.sqlite import EVENT_KINDS, Store
from ..supervisor.loop import Supervisor
from .usage import UsageSampler, cancel

if TYPE_CHECKING:
    from .nodes import Nodes


class EventLog:
    """The store's events, and the wake-up of those who wait for the next one."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting = 0  # long polls waiting now
        self._changed = asyncio.Event()

    def notify(self, event: dict[str, Any] | None = None) -> None:
        """An event was stored: wake the long polls."""
        self._changed.set()

    def add(self, kind: str, subject: str, action: str, message: str) -> dict[str, Any]:
        """Store a checkpoint or alias event and wake the long polls."""
        event = self.store.add_event(None, None, None, message, kind=kind, subject=subject,
                                     action=action)
        self.notify(event)
        return event

    async def wait(self, since: int = 0, wait_s: float = 0.0, kind: str | None = None,
                   subject: str | None = None, project: str | None = None
                   ) -> list[dict[str, Any]]:
        """Events after `since` of `kind` (about `subject`); with `wait_s`, wait that long
        for the next one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            events = self.store.events(since=since, kind=kind, subject=subject,
                                       project=project)
            left = deadline - loop.time()
            if events or left <= 0:
                return events
            # Cleared with no await since the read: an event stored after it sets it again.
            self._changed.clear()
            self.waiting += 1
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return []
            finally:
                self.waiting -= 1


def event_filter(node: str | None = None, kind: str | None = None, alias: str | None = None,
                 checkpoint: str | None = None) -> tuple[str | None, str | None]:
    """(kind, subject) of the events asked for: of a kind, of one node, alias or
    checkpoint."""
    if kind is not None and kind not in EVENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EVENT_KINDS)}", field="kind")
    named = [(k, v) for k, v in (("node", node), ("alias", alias), ("checkpoint", checkpoint))
             if v is not None]
    if len(named) > 1:
        raise InvalidInput("give one of node, alias and checkpoint", field=named[1][0])
    if not named:
        return kind, None
    subject_kind, subject = named[0]
    if kind not in (None, subject_kind):
        raise InvalidInput(f"events of kind {kind} have no {subject_kind}", field="kind")
    return subject_kind, subject


class Observe:
    """Logs, captured requests and metrics of a node's instances."""

    def __init__(self, nodes: Nodes, store: Store, supervisor: Supervisor, runtime: Runtime,
                 routes: Routes, gateway: Gateway, recorder: Recorder,
                 running: Callable[[], bool]) -> None:
        self.nodes = nodes
        self.store = store
        self.supervisor = supervisor
        self.runtime = runtime
        self.routes = routes
        self.gateway = gateway
        self.recorder = recorder
        self.running = running
        docker = runtime.runtimes.get("docker") if isinstance(runtime, Runtimes) else None
        usage = UsageSampler(lambda: supervisor.instances,
                             docker.client if isinstance(docker, DockerRuntime) else None)
        self.history = MetricHistory(gateway.metrics.own, routes, usage)  # summed over workers

    async def logs(self, name: str, instance: str | None = None, tail_bytes: int = 64 * 1024,
                   request_id: str | None = None) -> list[dict[str, Any]]:
        """Each instance's log tail (or one request's lines): running instances, then the
        last few that were removed."""
        result = []
        for item, removed in self._log_instances(name, instance):
            text = await asyncio.to_thread(self.runtime.logs, item, tail_bytes, request_id)
            result.append({"instance": item.id, "status": item.status.value, "removed": removed,
                           "log": text})
        return result

    def _log_instances(self, name: str, instance: str | None) -> list[tuple[Instance, bool]]:
        self.nodes.find(name)
        running = [(i, False) for i in self.supervisor.instances[name].values()]
        removed = [(i, True) for i in self.store.instances(name, removed=True)[-5:]]
        chosen = [item for item in running + removed if instance in (None, item[0].id)]
        if instance is not None and not chosen:
            raise NotFound(f"node {name!r} has no instance {instance!r}", field="instance")
        return chosen

    async def follow_logs(self, name: str, instance: str | None = None, tail_bytes: int = 0,
                          request_id: str | None = None, poll_s: float = 0.2
                          ) -> AsyncIterator[dict[str, Any] | None]:
        """The end of each log (`tail_bytes`), then new lines as they are written, as
        `{"instance", "log"}` (None after a poll that found none), until the node is deleted
        or the service stops; instances that start meanwhile are followed from their start."""
        chosen = self._log_instances(name, instance)
        followers = {item.id: Follower(item.log_path) for item, _ in chosen if item.log_path}
        try:
            for tail in await self.logs(name, instance, tail_bytes, request_id):
                if tail["log"] and tail["instance"] in followers:
                    yield {"instance": tail["instance"], "log": tail["log"]}
            while self.running() and name in self.supervisor.nodes:
                for item in list(self.supervisor.instances.get(name, {}).values()):
                    if item.id not in followers and item.log_path and instance in (None, item.id):
                        followers[item.id] = Follower(item.log_path, from_start=True)
                for instance_id, follower in followers.items():
                    lines = [line for line in follower.read()
                             if request_id is None or has_request_id(line, request_id)]
                    if lines:
                        yield {"instance": instance_id, "log": "\n".join(lines) + "\n"}
                yield None
                await asyncio.sleep(poll_s)
        finally:
            for follower in followers.values():
                follower.close()

    async def requests(self, name: str, last: int = 100) -> dict[str, Any]:
        """The node's captured requests, newest last."""
        node = self.nodes.find(name)
        await self.recorder.flush()
        return captured(self.store, node, last)

    async def metrics(self, name: str) -> str:
        """The node's instances' own metrics, labelled with node_id and instance_id."""
        self.nodes.find(name)
        metrics = self.gateway.metrics
        return metrics.text(await metrics.instances(self.routes, name))


HISTORY_PERIOD_S = 5.0
HISTORY_SPAN_S = 24 * 3600.0
HISTORY_POINTS = 400  # the most samples one answer carries: a chart's width, not the ring's
GRPC_CLIENT_ERRORS = {"INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED", "PERMISSION_DENIED",
                      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "OUT_OF_RANGE"}


def _blank() -> dict[str, Any]:
    return {"requests": 0.0, "ok": 0.0, "client_errors": 0.0, "server_errors": 0.0,
            "duration_sum": 0.0, "duration_count": 0.0, "buckets": [0.0] * len(BUCKETS)}


def _code_class(sample: str, code: str) -> str | None:
    """Which of ok, client_errors and server_errors an HTTP or gRPC answer counts in."""
    if sample == "node_http_codes_total":
        return {"2": "ok", "3": "ok", "4": "client_errors"}.get(code[:1], "server_errors")
    if sample == "node_grpc_codes_total":
        if code == "OK":
            return "ok"
        return "client_errors" if code in GRPC_CLIENT_ERRORS else "server_errors"
    return None


def counters(families: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Per node, the gateway's counters summed over paths and protocols: requests, answers
    by class, and the latency histogram (cumulative, one count per bucket of BUCKETS)."""
    nodes: dict[str, dict[str, Any]] = {}
    bucket_index = {str(le) if le != math.inf else "+Inf": i for i, le in enumerate(BUCKETS)}
    for family in families:
        for sample in family.samples:
            node = sample.labels.get("node_id")
            if node is None:
                continue
            totals = nodes.setdefault(node, _blank())
            name = sample.name
            if name == "node_requests_total":
                totals["requests"] += sample.value
            elif name == "node_request_durations_sum":
                totals["duration_sum"] += sample.value
            elif name == "node_request_durations_count":
                totals["duration_count"] += sample.value
            elif name == "node_request_durations_bucket":
                index = bucket_index.get(sample.labels.get("le", ""))
                if index is not None:
                    totals["buckets"][index] += sample.value
            else:
                kind = _code_class(name, sample.labels.get("code", ""))
                if kind is not None:
                    totals[kind] += sample.value
    return nodes


class MetricHistory:
    """Per node, a bounded ring of the gateway's counters sampled every few seconds, kept by
    the service so the panel's charts survive the panel (issue 17): the answer holds
    cumulative counters, which a client differences into rates and percentiles, and each
    instance's CPU % and memory as the latest round of `usage` read them."""

    def __init__(self, collect: Callable[[], Iterable[Any]], routes: Routes,
                 usage: UsageSampler | None = None, period_s: float = HISTORY_PERIOD_S,
                 span_s: float = HISTORY_SPAN_S) -> None:
        self.collect = collect
        self.routes = routes
        self.usage = usage
        self.period_s = period_s
        self.rings: dict[str, deque[dict[str, Any]]] = {}
        self.size = max(2, int(span_s / period_s))
        self._task: asyncio.Task[None] | None = None

    def sample(self, now: float | None = None) -> None:
        """Take one sample of every routed node; forget the rings of nodes that are gone."""
        now = time.time() if now is None else now
        totals = counters(self.collect())
        routed = dict(self.routes.nodes)
        for gone in set(self.rings) - set(routed):
            del self.rings[gone]
        for name, route in routed.items():
            ring = self.rings.setdefault(name, deque(maxlen=self.size))
            # None: no round of usage ended since the last sample (a gap, not a zero)
            usage = self.usage.take(name) if self.usage is not None else None
            ring.append({"time": round(now, 3), **totals.get(name, _blank()),
                         **_load(route), "usage": usage})

    def series(self, name: str, range_s: float, now: float | None = None) -> dict[str, Any]:
        """The node's samples of the last `range_s` seconds, thinned to HISTORY_POINTS (the
        counters are cumulative, so a thinned series loses no request)."""
        now = time.time() if now is None else now
        chosen = [s for s in self.rings.get(name, ()) if s["time"] >= now - range_s]
        stride = max(1, math.ceil(len(chosen) / HISTORY_POINTS))
        thinned = chosen[::-1][::stride][::-1]  # from the newest back: the last one stays
        buckets = [le if le != math.inf else None for le in BUCKETS]
        return {"node": name, "period_s": self.period_s, "range_s": range_s, "time": now,
                "buckets": buckets, "samples": thinned}

    def start(self) -> None:
        """Sample every period until stop()."""
        self.sample()
        self._read_usage()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self.usage is not None:
            await self.usage.stop()

    def _read_usage(self) -> None:
        """Start the next round of usage, off the loop; the next sample stores it."""
        if self.usage is not None:
            self.usage.kick()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            try:
                self.sample()
                self._read_usage()
            except Exception:  # a missed sample is a gap in a chart, not a stopped history
                continue


def _load(route: Route) -> dict[str, Any]:
    """What the node is doing now: requests in flight, what its instances take at once, and
    how many instances are in balancing."""
    return {"in_flight": route.in_flight, "capacity": route.slots * len(route.backends),
            "instances": len(route.backends)}
