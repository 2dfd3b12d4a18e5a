"""Watching what runs: the event stream, instance logs (and following them), captured
requests and the instances' own metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..gateway.app import Gateway
from ..gateway.capture import Recorder, captured
from ..gateway.routing import Routes
from ..models import Instance, InvalidInput, NotFound
from ..runtimes.base import Runtime
from ..runtimes.logfiles import Follower, has_request_id
from ..store.sqlite import EVENT_KINDS, Store
from ..supervisor.loop import Supervisor

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
                   subject: str | None = None) -> list[dict[str, Any]]:
        """Events after `since` of `kind` (about `subject`); with `wait_s`, wait that long
        for the next one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            events = self.store.events(since=since, kind=kind, subject=subject)
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
