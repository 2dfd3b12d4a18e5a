"""The process runtime: what the host cannot give an instance is refused at create, and a
worker whose start is cancelled is stopped all the same."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.models import Instance, Node
from jupyter_deploy.runtimes.process import ProcessRuntime

from ..conftest import checkpoint_body, until, worker_pids
from ..control.test_api import ADDER, call, error_of

HOST_CPUS = os.cpu_count() or 1
HOST_MEMORY_MB = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    configs = {"small": {"cpus": 1, "memory_mb": 1024, "gpus": 0},
               "wide": {"cpus": HOST_CPUS + 1, "memory_mb": 1024, "gpus": 0},
               "deep": {"cpus": 1, "memory_mb": HOST_MEMORY_MB + 1024, "gpus": 0}}
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_deploy": True,
                                              "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "DeployApp": {"state_dir": str(tmp_path / "state"), "gateway_port": 0,
                      "gateway_grpc_port": 0, "instance_configs": configs},
    }


async def test_beyond_the_host_is_refused_at_create(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    cases = [({"config": "wide"}, "config", f"this host has {HOST_CPUS}"),
             ({"config": "deep"}, "config", f"this host has {HOST_MEMORY_MB} MB"),
             ({"memory_mb": HOST_MEMORY_MB + 1}, "memory_mb", f"this host has {HOST_MEMORY_MB} MB"),
             ({"config": "small", "memory_mb": HOST_MEMORY_MB * 2}, "memory_mb", "this host")]
    for spec, field, told in cases:
        status, error = await error_of(jp_fetch, "nodes", method="POST",
                                       body={"name": "refused", "checkpoint": "adder", **spec})
        assert status == 422 and error["error"]["field"] == field, (spec, error)
        assert told in error["error"]["message"], (spec, error)
    assert all(n["name"] != "refused" for n in (await call(jp_fetch, "nodes"))["nodes"])
    assert not list((deploy.state_dir / "logs").glob("refused*"))  # no instance was tried


async def test_a_fitting_config_runs_and_an_update_beyond_the_host_is_refused(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    await call(jp_fetch, "nodes", method="POST",
               body={"name": "fits", "checkpoint": "adder", "config": "small"})
    await until(lambda: deploy.node("fits")["status"] == "Healthy", timeout=30,
                message="the node to be Healthy")
    status, error = await error_of(jp_fetch, "nodes", "fits", method="PATCH",
                                   body={"config": "wide"})
    assert status == 422 and error["error"]["field"] == "config"
    assert deploy.node("fits")["config"] == "small"


async def test_a_start_cancelled_midway_leaves_no_process(jp_fetch, deploy, tmp_path):
    """The worker starts in a thread: a start cancelled at any point (the supervisor does
    so when a node is deleted) still ends with the process stopped, never an orphan."""
    pinned = await call(jp_fetch, "checkpoints", method="POST",
                        body=checkpoint_body("adder", **ADDER))
    runtime = ProcessRuntime(tmp_path / "logs", public_key=deploy._checkpoints.key.public_bytes)
    node = Node(name="cut", checkpoint_id=pinned["id"], checkpoint="adder@1")
    folder = deploy.store.checkpoint_dir(pinned["id"])
    for step in range(8):
        instance = Instance(id=f"cut-{step}", node="cut")
        start = asyncio.create_task(runtime.create(node, instance, folder))
        for _ in range(step):  # cancelled after 0, 1, 2, ... turns of the loop
            await asyncio.sleep(0)
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await runtime.stop(instance, 5.0)
        assert not runtime.processes and not worker_pids(deploy.state_dir), step
    await until(lambda: not worker_pids(deploy.state_dir), timeout=5,
                message="every worker to be gone")
