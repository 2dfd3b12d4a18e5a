"""Each instance's CPU, memory and last health check, for the panel's instance table
(issue 17)."""

from __future__ import annotations

import time

import psutil

from ..conftest import until
from .test_api import call, error_of, healthy_node


async def test_usage_reads_each_instance_and_its_last_health_check(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, health={"interval_s": 0.5})
    pid = deploy.node("adder")["instances"][0]["pid"]
    found: dict = {}

    async def checked() -> bool:
        found.update(await call(jp_fetch, "nodes", "adder", "usage"))
        return found["instances"][0]["last_check"] is not None

    await until(checked, timeout=20, interval=0.3, message="a health check after admission")
    row = found["instances"][0]
    assert row["id"] == deploy.node("adder")["instances"][0]["id"]
    assert row["last_check"]["ok"] is True and row["last_check"]["in_a_row"] >= 1
    assert abs(row["last_check"]["time"] - time.time()) < 5
    rss = psutil.Process(pid).memory_info().rss
    assert 0.5 * rss < row["memory_bytes"] < 2 * rss
    assert isinstance(row["cpu_percent"], float) and row["cpu_percent"] >= 0


async def test_usage_of_an_unknown_node_is_404(jp_fetch, deploy):
    code, body = await error_of(jp_fetch, "nodes", "nope", "usage")
    assert code == 404 and body["error"]["field"] == "node"
