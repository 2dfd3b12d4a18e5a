"""The history ring's usage readings: each round stored once, a Swarm instance left out."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.models import Instance
from jupyter_deploy.service.observe import MetricHistory
from jupyter_deploy.service.usage import CpuMeter, UsageSampler, sample_instances


def test_each_reading_goes_into_one_sample_and_then_the_ring_waits_for_the_next():
    routes = Routes()
    routes.add_node("a", "")
    usage = UsageSampler(dict)
    history = MetricHistory(CollectorRegistry().collect, routes, usage, period_s=1.0)
    usage._fresh = {"a": {"a-1": {"cpu_percent": 50.0, "memory_bytes": 1000}}}
    history.sample(now=1.0)
    history.sample(now=2.0)
    assert [s["usage"] for s in history.rings["a"]] == [
        {"a-1": {"cpu_percent": 50.0, "memory_bytes": 1000}}, None]


def test_a_swarm_instance_has_no_reading_and_a_gone_process_none():
    swarm = Instance(id="s-1", node="s", runtime="swarm", container_id="abc")
    gone = Instance(id="p-1", node="p", pid=None)
    assert sample_instances([swarm, gone], client=object()) == {"p-1": None}


def test_cpu_is_the_share_of_a_core_since_the_last_reading():
    meter = CpuMeter()
    assert meter.percent("a", "a-1", wall=10.0, cpu_s=5.0, since=0.0) == 50.0
    assert meter.percent("a", "a-1", wall=20.0, cpu_s=5.5, since=0.0) == 5.0
    meter.keep_nodes(set())
    assert meter.percent("a", "a-1", wall=30.0, cpu_s=6.0, since=20.0) == 60.0


def test_a_round_that_is_slow_is_never_joined_by_a_second():
    started = 0

    async def scenario() -> None:
        nonlocal started
        release = asyncio.Event()

        async def docker() -> None:  # an engine that takes its time to answer
            nonlocal started
            started += 1
            await release.wait()

        container = Instance(id="c-1", node="c", runtime="docker", container_id="abc")
        usage = UsageSampler(lambda: {"c": {"c-1": container}}, docker, period_s=0.0)
        usage.kick()
        await asyncio.sleep(0)
        usage.kick()  # the first round still waits: no second one
        await asyncio.sleep(0)
        assert started == 1
        release.set()
        await usage.stop()

    asyncio.run(scenario())
