"""Each instance's CPU, memory and last health check, and a checkpoint's stored files, for
the panel's instance table and checkpoint view (issue 17)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psutil
import pytest

from ..conftest import checkpoint_body, until
from ..runtimes.test_docker import APP, BASE, FAST_HEALTH, _engine
from .test_api import ADDER, call, error_of, healthy_node


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


async def test_a_checkpoint_lists_its_stored_files_size_and_signature(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    stored = await call(jp_fetch, "checkpoints", "adder@1", "files")
    assert (stored["name"], stored["version"], stored["signed"]) == ("adder", 1, True)
    paths = {f["path"] for f in stored["files"]}
    assert "checkpoint.json" in paths
    assert stored["size_bytes"] == sum(f["bytes"] for f in stored["files"]) > 0
    code, body = await error_of(jp_fetch, "checkpoints", "nope", "files")
    assert code == 404 and body["error"]["field"] == "checkpoint"


@contextlib.asynccontextmanager
async def image_node(jp_fetch, deploy, tag: str) -> AsyncIterator[str]:
    """A Healthy node "web" of an image of the test's own (`tag`, removed after): its name."""
    engine = _engine()
    if isinstance(engine, str):
        pytest.skip(f"no Docker engine: {engine}")
    image, _ = await asyncio.to_thread(engine.images.build, path=str(APP),
                                       buildargs={"BASE": BASE}, rm=True, tag=tag)
    try:
        await call(jp_fetch, "nodes", method="POST", body={
            "name": "web", "image": tag, "port": 8080,
            "health": {"path": "/healthz", **FAST_HEALTH}})
        await until(lambda: deploy.node("web")["status"] == "Healthy", timeout=60,
                    message="the image node to be Healthy")
        yield "web"
        await call(jp_fetch, "nodes", "web", method="DELETE")
    finally:
        await asyncio.to_thread(engine.images.remove, image.id, force=True)


async def test_usage_of_a_container_comes_from_the_docker_stats_api(jp_fetch, deploy):
    async with image_node(jp_fetch, deploy, "jupyter-deploy-usage-test:latest") as web:
        found: dict = {}

        async def sampled() -> bool:
            found.update((await call(jp_fetch, "nodes", web, "usage"))["instances"][0])
            return found["memory_bytes"] is not None and found["last_check"] is not None

        await until(sampled, timeout=20, interval=0.5, message="a sample of the container")
        assert 1 << 20 < found["memory_bytes"] < 1 << 30  # a Python HTTP server's few MB
        assert isinstance(found["cpu_percent"], float) and found["cpu_percent"] >= 0
        assert found["last_check"]["ok"] is True
