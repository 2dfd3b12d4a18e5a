"""Each instance's CPU and resident memory, read from its process (psutil) or its container
(one Docker stats call): for the instance table when the panel asks, and every few seconds
for the node's history ring (issue 17)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psutil

from ..models import Instance

USAGE_PERIOD_S = 5.0  # a Docker stats call takes tens of ms per container: a light load

Reading = dict[str, dict[str, float | int]]  # instance id -> cpu_percent, memory_bytes


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

    def keep_nodes(self, nodes: set[str]) -> None:
        """Forget the nodes that are gone."""
        for node in set(self._last) - nodes:
            del self._last[node]


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


def wants_docker(instances: list[Instance]) -> bool:
    """Whether reading these instances needs a Docker client."""
    return any(i.runtime == "docker" and i.container_id for i in instances)


def sample_instances(instances: list[Instance], client: Any
                     ) -> dict[str, tuple[float, int] | None]:
    """Read every instance's counters; blocking (Docker calls), so run it in a thread. A
    Swarm instance runs on another host, whose stats this engine cannot read: left out."""
    found: dict[str, tuple[float, int] | None] = {}
    for instance in instances:
        if instance.runtime == "process":
            found[instance.id] = process_usage(instance)
        elif instance.runtime == "docker" and instance.container_id and client is not None:
            found[instance.id] = container_usage(client, instance.container_id)
    return found


class UsageSampler:
    """Rounds of every instance's CPU % and memory, one at a time, in a thread; each round's
    reading is handed once to the history ring, which stores it in its next sample."""

    def __init__(self, instances: Callable[[], Mapping[str, Mapping[str, Instance]]],
                 docker: Callable[[], Awaitable[Any]] | None = None,
                 period_s: float = USAGE_PERIOD_S) -> None:
        self.instances = instances
        self.docker = docker
        self.period_s = period_s
        self.meter = CpuMeter()
        self._fresh: dict[str, Reading] = {}
        self._task: asyncio.Task[None] | None = None
        self._started = -float("inf")
        self.log = logging.getLogger(__name__)

    def take(self, node: str) -> Reading | None:
        """The node's reading of the last round, once; None when none came since."""
        return self._fresh.pop(node, None)

    def kick(self) -> None:
        """Start a round, unless one is still running or the last began under a period ago."""
        loop = asyncio.get_running_loop()
        if (self._task is not None and not self._task.done()) or \
                loop.time() - self._started < self.period_s * 0.9:  # 0.9: the ring's jitter
            return
        self._started = loop.time()
        self._task = loop.create_task(self._round())

    async def _round(self) -> None:
        try:
            self._fresh = await self.read()
        except Exception:  # a missed round is a gap in a chart, not a stopped history
            self.log.exception("reading the instances' usage failed")

    async def read(self) -> dict[str, Reading]:
        """Per node, each instance's CPU % (since the last round) and resident bytes."""
        groups = {node: list(group.values()) for node, group in self.instances().items()}
        every = [i for group in groups.values() for i in group]
        client = None
        if self.docker is not None and wants_docker(every):
            with contextlib.suppress(Exception):  # no engine: its instances are left out
                client = await self.docker()
        samples = await asyncio.to_thread(sample_instances, every, client)
        wall = time.time()
        readings: dict[str, Reading] = {}
        for node, group in groups.items():
            reading: Reading = {}
            for instance in group:
                sample = samples.get(instance.id)
                if sample is not None:
                    reading[instance.id] = {
                        "cpu_percent": self.meter.percent(node, instance.id, wall, sample[0],
                                                          instance.created),
                        "memory_bytes": sample[1]}
            self.meter.keep(node, {i.id for i in group})
            readings[node] = reading
        self.meter.keep_nodes(set(groups))
        return readings

    async def stop(self) -> None:
        """Cancel a round in progress (its thread ends on its own)."""
        await cancel(self._task)
        self._task = None


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
