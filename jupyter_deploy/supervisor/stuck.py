"""Instances with a request past the request timeout (issue 11): the gateway takes them out
of balancing at once; here they go back in when their cell ends, or are replaced when it
still runs at the end of the health-check window (a cell's thread cannot be interrupted, so
the process goes)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..gateway.routing import Routes
from ..models import Instance, Node
from .health import PROBE_ERRORS, probe

STUCK_POLL_S = 0.5  # how often a stuck instance is asked whether its cell still runs
STUCK_STOP_S = 0.5  # SIGTERM, then this long before a stuck instance is killed


class Replacer(Protocol):
    """What the supervisor does for a stuck instance."""

    def failed(self, node: Node) -> None: ...

    def begin_stop(self, node: Node, instance: Instance, reason: str, *,
                   force: bool = False) -> None: ...

    def note(self, node: str, message: str) -> None: ...


async def watch_stuck(supervisor: Replacer, routes: Routes, node: Node, instance: Instance
                      ) -> None:
    """Put the instance back in balancing once its cell ends, or replace it."""
    loop = asyncio.get_running_loop()
    window_s = node.health.interval_s * node.health.fail_threshold
    deadline = loop.time() + window_s
    while loop.time() < deadline:
        await asyncio.sleep(min(STUCK_POLL_S, max(0.0, deadline - loop.time())))
        if not await cell_running(node, instance):
            route = routes.nodes.get(node.name)
            backend = route.backends.get(instance.id) if route else None
            if route is not None and backend is not None:
                route.set_stuck(backend, False)
            supervisor.note(node.name, f"{instance.id} back in balancing: its cell ended")
            return
    supervisor.failed(node)
    supervisor.begin_stop(node, instance, f"stuck: its cell still ran {window_s:g} s after "
                          "the request timeout; the process is replaced", force=True)


async def cell_running(node: Node, instance: Instance) -> bool:
    """Whether the instance says a cell is running (no answer counts as running)."""
    port = instance.health_port or instance.port or 0
    try:
        _, body = await probe(instance.host, port, "/readyz", node.health.timeout_s)
    except PROBE_ERRORS:
        return True
    return not isinstance(body, dict) or bool(body.get("busy_s", 0.0))
