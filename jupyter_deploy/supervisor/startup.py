"""Bringing an instance from created to Healthy, for the supervisor: the process or
container is made, connects, prepares (restores the checkpoint, or passes its first health
check), and enters balancing. Adopted containers take the same path from `Created`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..models import Instance, InstanceStatus, Node
from ..types import InputCheck
from .health import PROBE_ERRORS, connects, healthy, probe
from .transitions import Event

NO_INPUTS = InputCheck([])  # what a Docker-image node's requests are checked against


@dataclass
class Checks:
    """Consecutive health-check results of one instance."""

    next_at: float = 0.0
    passes: int = 0
    fails: int = 0
    unhealthy_since: float = 0.0


class Startup:
    """The start-up steps of the supervisor's instances (mixed into Supervisor)."""

    async def _start(self, node: Node, instance: Instance) -> None:
        """Create the instance, then follow it until it is ready (or give up)."""
        try:
            await self.runtime.create(node, instance,
                                      self.store.checkpoint_dir(instance.checkpoint_id))
        except Exception as exc:  # noqa: BLE001 - reported on the instance and the node
            self.log.exception("could not create %s", instance.id)
            self._failed(node)
            self._begin_stop(node, instance, f"could not be created: {exc}")
            return
        made = f"container {instance.container_id[:12]}" if instance.container_id else \
            f"pid {instance.pid}"
        self._transition(node, instance, Event.SPAWNED, made)
        await self._follow(node, instance)

    def adopt(self, node: Node, instance: Instance) -> None:
        """Take back an instance still running from a previous start of the service: it is
        checked as a new one would be, and serves once it passes."""
        instance.status = InstanceStatus.UNDEFINED
        self.instances[node.name][instance.id] = instance
        self._transition(node, instance, Event.SPAWNED,
                         f"adopted container {instance.container_id[:12]}")
        self._spawn(instance, self._follow(node, instance))

    async def _follow(self, node: Node, instance: Instance) -> None:
        """From a created instance to Healthy: connected, prepared, ready (or give up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout_s  # once created: builds take their time
        if node.from_image:
            return await self._follow_image(node, instance, deadline)
        phase = await self._wait_for(instance, "/livez", deadline)
        if phase is None:
            return self._give_up(node, instance)
        self._transition(node, instance, Event.CONNECTED, f"{instance.host}:{instance.port}")
        while phase.get("phase") == "starting" and loop.time() < deadline:
            await asyncio.sleep(0.01)
            phase = await self._wait_for(instance, "/livez", deadline) or {}
        self._transition(node, instance, Event.RESTORING, "restoring the checkpoint")
        if await self._wait_for(instance, "/readyz", deadline) is None:
            return self._give_up(node, instance)
        await self._admit(node, instance)

    async def _follow_image(self, node: Node, instance: Instance, deadline: float) -> None:
        """A Docker-image node's instance: it connects, then passes its health check."""
        loop = asyncio.get_running_loop()
        while not await connects(instance.host, instance.port):
            if loop.time() > deadline:
                return self._give_up(node, instance, hint=node.network == "host")
            await asyncio.sleep(0.05)
        self._transition(node, instance, Event.CONNECTED, f"{instance.host}:{instance.port}")
        self._transition(node, instance, Event.RESTORING, "waiting for its health check")
        while not await healthy(node, instance, node.health.timeout_s):
            if loop.time() > deadline:
                return self._give_up(node, instance)
            await asyncio.sleep(0.05)
        await self._admit(node, instance)

    async def _admit(self, node: Node, instance: Instance) -> None:
        """Ready: into balancing (after the replay check of a checkpoint node)."""
        loop = asyncio.get_running_loop()
        if not await self.replays.admit(node, instance):
            self._failed(node)
            return self._begin_stop(node, instance, "kept out of balancing: the replay check "
                                    "failed and the node is strict")
        self._checks[instance.id] = Checks(next_at=loop.time() + node.health.interval_s)
        self._add_backend(node, instance)
        self._failures[node.name] = 0
        self._transition(node, instance, Event.READY, "ready")

    async def _wait_for(self, instance: Instance, path: str, deadline: float) -> dict | None:
        """Poll `path` until it answers 200; its JSON body, or None past the deadline."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                status, body = await probe(instance.host, instance.port, path, 1.0)
                if status == 200:
                    return body if isinstance(body, dict) else {}
            except PROBE_ERRORS:
                pass
            await asyncio.sleep(0.01)
        return None

    def _add_backend(self, node: Node, instance: Instance) -> None:
        check = NO_INPUTS if node.from_image else self.input_check(instance.checkpoint_id)
        # a checkpoint instance serves its metrics itself; an image's, where told, if at all
        telemetry = instance.telemetry or (None if node.from_image else "")
        self.routes.add_backend(node.name, instance.id, instance.host, instance.port or 0, check,
                                telemetry)

    def _give_up(self, node: Node, instance: Instance, hint: bool = False) -> None:
        self._failed(node)
        reason = f"not ready within {self.startup_timeout_s:g} s"
        if hint:
            reason += (f": nothing listens on {instance.host}:{instance.port}; on host "
                       "networking the image must listen on $PORT (or use network bridge)")
        self._begin_stop(node, instance, reason)

    def note(self, node: str, message: str) -> None:
        """Progress worth showing on the node (image pulls and builds)."""
        if node in self.nodes:
            self._emit(node, None, None, message)
