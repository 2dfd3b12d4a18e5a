"""Each instance's CPU and memory in the node's history, sampled by the service (issue 17):
the Monitoring tab's "CPU per instance" and "Memory per instance" charts."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from ..conftest import checkpoint_body, until
from .test_api import call
from .test_usage import image_node

BURN = checkpoint_body(  # wall time, not CPU time: a busy machine still sees a whole burn
    "burner", "import time\nend = time.time() + seconds\nwhile time.time() < end:\n    pass\n"
    "burnt = seconds", "seconds:float", "burnt", seconds=0.0)


def _execute(url: str, key: str, body: object) -> int:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


async def _usage(jp_fetch, node: str) -> list[dict]:
    """The node's samples that carry a reading of its instances, oldest first."""
    samples = (await call(jp_fetch, "nodes", node, "history", params={"range": 120})
               )["samples"]
    return [s["usage"] for s in samples if s["usage"]]


async def test_a_node_burning_cpu_shows_it_in_its_history_and_an_idle_one_does_not(
        jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=BURN)
    keys = {}
    for name in ("busy", "idle"):
        keys[name] = (await call(jp_fetch, "nodes", method="POST",
                                 body={"name": name, "checkpoint": "burner"}))["key"]
    await until(lambda: all(deploy.node(n)["status"] == "Healthy" for n in keys), timeout=30,
                message="both nodes to be Healthy")
    instance = deploy.node("busy")["instances"][0]["id"]
    # 10 s: two periods of the sampler, so one whole period falls inside the burn
    burn = asyncio.ensure_future(asyncio.to_thread(
        _execute, f"{deploy.gateway_url}/v1/nodes/busy:execute", keys["busy"],
        {"input": {"seconds": 10.0}}))
    peak = 0.0

    async def burnt() -> bool:
        nonlocal peak
        peak = max([u[instance]["cpu_percent"] for u in await _usage(jp_fetch, "busy")
                    if instance in u], default=0.0)
        return peak > 60

    await until(burnt, timeout=30, interval=1, message="the busy instance's CPU in its history")
    assert await burn == 200
    idle = await _usage(jp_fetch, "idle")
    idle_instance = deploy.node("idle")["instances"][0]["id"]
    latest = idle[-1][idle_instance]
    assert latest["cpu_percent"] < 20 < peak - latest["cpu_percent"], (latest, peak)
    assert latest["memory_bytes"] > 1 << 20  # a Python worker's few MB at least
    assert set(idle[-1]) == {idle_instance}


async def test_a_container_instance_has_its_memory_in_the_history(jp_fetch, deploy):
    async with image_node(jp_fetch, deploy, "jupyter-deploy-usage-history-test:latest") as web:
        instance = deploy.node(web)["instances"][0]["id"]

        async def read() -> bool:
            return any(instance in u for u in await _usage(jp_fetch, web))

        await until(read, timeout=30, interval=1, message="the container in the history")
        reading = [u for u in await _usage(jp_fetch, web) if instance in u][-1][instance]
        assert 1 << 20 < reading["memory_bytes"] < 1 << 30  # a Python HTTP server's few MB
        assert reading["cpu_percent"] >= 0
