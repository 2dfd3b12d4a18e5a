"""Bringing an instance from created to Healthy, for the supervisor: the process or
container is made, connects, prepares (restores the checkpoint, or passes its first health
check), and enters balancing. Adopted containers take the same path from `Created`.

`Startup` owns none of the supervisor's state: it reports what happens through `Lifecycle`,
the interface the supervisor implements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..models import Instance, Node
from ..runtimes.base import Runtime
from .health import PROBE_ERRORS, connects, healthy, probe
from .replay import Replays
from .transitions import Event


class Lifecycle(Protocol):
    """What start-up tells the supervisor, which owns statuses, failures and stops."""

    def transition(self, node: Node, instance: Instance, event: Event, message: str) -> None:
        """Move the instance along the life-cycle table (no-op when `event` does not apply)."""

    def failed(self, node: Node) -> None:
        """An instance of the node failed: back off before starting more."""

    def begin_stop(self, node: Node, instance: Instance, reason: str) -> None:
        """Take the instance down, for `reason`."""

    def admitted(self, node: Node, instance: Instance) -> None:
        """The instance is ready and may serve: into balancing, checked from now on."""


class Startup:
    """The start-up steps of an instance, from create to admitted (or given up)."""

    def __init__(self, runtime: Runtime, checkpoint_dir: Callable[[str], Path],
                 replays: Replays, lifecycle: Lifecycle, timeout_s: float,
                 log: logging.Logger) -> None:
        self.runtime = runtime
        self.checkpoint_dir = checkpoint_dir  # checkpoint id -> its folder in the store
        self.replays = replays
        self.lifecycle = lifecycle
        self.timeout_s = timeout_s  # from created to ready
        self.log = log

    async def start(self, node: Node, instance: Instance) -> None:
        """Create the instance, then follow it until it is ready (or give up)."""
        try:
            await self.runtime.create(node, instance, self.checkpoint_dir(instance.checkpoint_id))
        except Exception as exc:  # noqa: BLE001 - reported on the instance and the node
            self.log.exception("could not create %s", instance.id)
            self.lifecycle.failed(node)
            self.lifecycle.begin_stop(node, instance, f"could not be created: {exc}")
            return
        made = f"container {instance.container_id[:12]}" if instance.container_id else \
            f"pid {instance.pid}"
        self.lifecycle.transition(node, instance, Event.SPAWNED, made)
        await self.follow(node, instance)

    async def follow(self, node: Node, instance: Instance) -> None:
        """From a created instance to Healthy: connected, prepared, ready (or give up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s  # once created: builds take their time
        if node.from_image:
            return await self._follow_image(node, instance, deadline)
        phase = await self._wait_for(instance, "/livez", deadline)
        if phase is None:
            return self._give_up(node, instance)
        self.lifecycle.transition(node, instance, Event.CONNECTED,
                                  f"{instance.host}:{instance.port}")
        while phase.get("phase") == "starting" and loop.time() < deadline:
            await asyncio.sleep(0.01)
            phase = await self._wait_for(instance, "/livez", deadline) or {}
        self.lifecycle.transition(node, instance, Event.RESTORING, "restoring the checkpoint")
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
        self.lifecycle.transition(node, instance, Event.CONNECTED,
                                  f"{instance.host}:{instance.port}")
        self.lifecycle.transition(node, instance, Event.RESTORING, "waiting for its health check")
        while not await healthy(node, instance, node.health.timeout_s):
            if loop.time() > deadline:
                return self._give_up(node, instance)
            await asyncio.sleep(0.05)
        await self._admit(node, instance)

    async def _admit(self, node: Node, instance: Instance) -> None:
        """Ready: into balancing (after the replay check of a checkpoint node)."""
        if not await self.replays.admit(node, instance):
            self.lifecycle.failed(node)
            self.lifecycle.begin_stop(node, instance, "kept out of balancing: the replay check "
                                      "failed and the node is strict")
            return
        self.lifecycle.admitted(node, instance)

    async def _wait_for(self, instance: Instance, path: str, deadline: float
                        ) -> dict[str, Any] | None:
        """Poll `path` until it answers 200; its JSON body, or None past the deadline."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                status, body = await probe(instance.host, instance.port or 0, path, 1.0)
                if status == 200:
                    return body if isinstance(body, dict) else {}
            except PROBE_ERRORS:
                pass
            await asyncio.sleep(0.01)
        return None

    def _give_up(self, node: Node, instance: Instance, hint: bool = False) -> None:
        self.lifecycle.failed(node)
        reason = f"not ready within {self.timeout_s:g} s"
        if hint:
            reason += (f": nothing listens on {instance.host}:{instance.port}; on host "
                       "networking the image must listen on $PORT (or use network bridge)")
        self.lifecycle.begin_stop(node, instance, reason)
