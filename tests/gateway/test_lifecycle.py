"""The data plane in its host: it stops in order (new connections refused, the answers in
flight given, then the instances stopped), its shadow requests end with it, and a notebook
server that hosts it keeps its own garbage collection."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path
from typing import Any

from ..conftest import checkpoint_body, until
from .test_gateway import post

# The cell sleeps when its node's environment says NAP, after leaving a mark that it began.
NAP = ("import os, pathlib, time\n"
       "if os.environ.get('NAP'):\n"
       "    pathlib.Path(marker).touch()\n"
       "    time.sleep(seconds)\n"
       "done = seconds")


async def nap_node(deploy, name: str, **spec: Any) -> str:
    """A Healthy node of the NAP cell; its key."""
    await deploy.add_checkpoint(checkpoint_body("nap", NAP, "marker:str,seconds:float", "done",
                                                marker="", seconds=0.0))
    _, key = await deploy.create_node({"name": name, "checkpoint": "nap", **spec})
    await until(lambda: deploy.node(name)["status"] == "Healthy", timeout=30,
                message=f"node {name} to be Healthy")
    return key


def refused(port: int) -> bool:
    """Whether a new connection to the gateway is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def call_while_stopping(deploy, tmp_path: Path, seconds: float):
    """Send a request whose cell naps `seconds`; stop the service once the cell runs.
    The request (still running) and the stop."""
    key = await nap_node(deploy, "sleepy", env={"NAP": "1"})
    marker = tmp_path / "began"
    url = f"{deploy.gateway_url}/v1/nodes/sleepy:execute"
    body = {"input": {"marker": str(marker), "seconds": seconds}}
    request = asyncio.ensure_future(asyncio.to_thread(post, url, body, key))
    await until(marker.exists, timeout=10, message="the cell to begin")
    return request, asyncio.ensure_future(deploy.stop())


async def test_a_request_in_flight_gets_its_answer_when_the_service_stops(deploy, tmp_path):
    # longer than an instance is given to stop: it must not be told to before it answered
    request, stopping = await call_while_stopping(deploy, tmp_path, 6.5)
    status, body, headers = await request
    assert (status, body) == (200, {"output": {"done": 6.5}})
    await stopping


async def test_new_connections_are_refused_once_the_stop_begins(deploy, tmp_path):
    request, stopping = await call_while_stopping(deploy, tmp_path, 2.0)
    await until(lambda: refused(deploy.gateway_port), timeout=5,
                message="new connections to be refused")
    assert not request.done(), "refused only after the request in flight was answered"
    status, _, _ = await request
    assert status == 200
    await stopping


def mirror_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__name__", "") == "_mirror" and not task.done()]


async def test_shadow_requests_end_with_their_gateway(deploy, tmp_path):
    await nap_node(deploy, "primary")
    await nap_node(deploy, "shadow", env={"NAP": "1"})
    made = deploy.set_alias("split", {"nodes": {"primary": 100},
                                      "shadow": {"node": "shadow", "percent": 100}})
    alias, alias_key = made.alias, made.key
    marker = tmp_path / "began"
    body = {"input": {"marker": str(marker), "seconds": 6.0}}
    status, answer, _ = await asyncio.to_thread(post, alias["endpoint"], body, alias_key)
    assert (status, answer) == (200, {"output": {"done": 6.0}})
    await until(marker.exists, timeout=10, message="the shadow node to run the copy")
    assert len(mirror_tasks()) == 1
    await deploy.gateway.stop()
    assert mirror_tasks() == []
    assert deploy.shadow("split")["requests"] == 0  # cancelled, not answered


async def test_a_notebook_server_hosting_the_service_is_not_frozen(deploy):
    # gc.freeze() is for `jupyter deploy serve`, whose process is the service's own
    assert deploy.running and gc.get_freeze_count() == 0
