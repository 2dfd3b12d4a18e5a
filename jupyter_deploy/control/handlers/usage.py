"""/deploy/api/nodes/{node}/usage: each instance's CPU, memory and last health check, read
from its process or container when the panel asks (issue 17's instance table)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...models import Node
from ...service.usage import CpuMeter, sample_instances, wants_docker
from .base import DeployHandler

METER = CpuMeter()  # one per server process: the deltas span the panel's calls


def last_check(checks: Any, node: Node, loop_now: float, wall_now: float
               ) -> dict[str, Any] | None:
    """When the instance was last health-checked (wall time), whether it passed, and how
    many results in a row were the same; None before its first check."""
    if checks is None or not (checks.passes or checks.fails):
        return None
    at = checks.next_at - node.health.interval_s  # each check sets the next one from its time
    return {"time": round(wall_now - (loop_now - at), 3), "ok": checks.passes > 0,
            "in_a_row": checks.passes or checks.fails}


class UsageHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """Each instance's CPU (% of one core), memory (bytes) and last health check."""
        scope = self.scope
        scope.node(name)  # 404 for an unknown node (or one of a project not the caller's)
        key = scope.key(name)
        supervisor = self.service.supervisor
        node = supervisor.nodes[key]
        instances = list(supervisor.instances.get(key, {}).values())
        client = await self.service.docker.client() if wants_docker(instances) else None
        samples = await asyncio.to_thread(sample_instances, instances, client)
        loop_now, wall_now = asyncio.get_running_loop().time(), time.time()
        rows = []
        for instance in instances:
            sample = samples.get(instance.id)
            rows.append({
                "id": instance.id,
                "cpu_percent": None if sample is None else METER.percent(
                    key, instance.id, wall_now, sample[0], instance.created),
                "memory_bytes": None if sample is None else sample[1],
                "last_check": last_check(supervisor.checks(instance.id), node, loop_now,
                                         wall_now)})
        METER.keep(key, {i.id for i in instances})
        self.reply({"node": name, "time": wall_now, "instances": rows})
