"""/deploy/api/nodes/{node}/usage: each instance's CPU, memory and last health check, read
from its process or container when the panel asks (issue 17's instance table)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil
from jupyter_server.auth.decorator import authorized
from tornado import web

from ...models import Instance, Node
from .base import DeployHandler


class CpuMeter:
    """CPU % of one core per instance, from the change in its CPU time since the last sample;
    the first sample averages over the instance's life, so it is never a bare 0."""

    def __init__(self) -> None:
        # node -> instance id -> (wall time, CPU seconds) of its last sample
        self._last: dict[str, dict[str, tuple[float, float]]] = {}

    def percent(self, node: str, instance: str, wall: float, cpu_s: float, since: float
                ) -> float:
        """The CPU used between the instance's last sample (or `since`) and `wall`."""
        last = self._last.setdefault(node, {})
        before_wall, before_cpu = last.get(instance, (since, 0.0))
        last[instance] = (wall, cpu_s)
        elapsed = wall - before_wall
        return round(max(0.0, 100 * (cpu_s - before_cpu) / elapsed), 1) if elapsed > 0 else 0.0

    def keep(self, node: str, instances: set[str]) -> None:
        """Forget the node's instances that are gone."""
        last = self._last.get(node, {})
        for instance in set(last) - instances:
            del last[instance]


METER = CpuMeter()  # one per server process: the deltas span the panel's calls


def process_usage(instance: Instance) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of a process instance; None when it is gone."""
    if not instance.pid:
        return None
    try:
        process = psutil.Process(instance.pid)
        with process.oneshot():
            times = process.cpu_times()
            return times.user + times.system, process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def container_usage(client: Any, container_id: str) -> tuple[float, int] | None:
    """(CPU seconds, bytes in use less the page cache) of a container; one sample of the
    Docker stats API, not the streaming one that waits a second."""
    try:
        stats = client.api.stats(container_id, stream=False, one_shot=True)
    except Exception:  # gone, or the engine is away: the row shows a dash
        return None
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", detail.get("cache", 0)))
    total_ns = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    if total_ns is None or "usage" not in memory:
        return None
    return total_ns / 1e9, max(0, int(memory["usage"]) - int(cache))


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
        client = None
        if any(i.runtime == "docker" and i.container_id for i in instances):
            client = await self.service.docker.client()
        samples = await asyncio.to_thread(self._sample, instances, client)
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

    @staticmethod
    def _sample(instances: list[Instance], client: Any) -> dict[str, tuple[float, int] | None]:
        """Read every instance's counters (in a thread: Docker calls block)."""
        found: dict[str, tuple[float, int] | None] = {}
        for instance in instances:
            if instance.runtime == "process":
                found[instance.id] = process_usage(instance)
            elif instance.runtime == "docker" and instance.container_id and client is not None:
                found[instance.id] = container_usage(client, instance.container_id)
        return found
