"""`c.DeployApp.interpreters`: an instance of a checkpoint pinned from a configured
interpreter runs that one; any other runs the service's own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import checkpoint_body, until
from ..control.test_api import ADDER, call
from .test_signing import script


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    alt = script(tmp_path / "python-alt", tmp_path / "alt-ran")
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_deploy": True,
                                              "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "DeployApp": {"state_dir": str(tmp_path / "state"), "gateway_port": 0,
                      "gateway_grpc_port": 0, "interpreters": {"alt": str(alt)}},
    }


async def test_a_configured_interpreter_runs_its_checkpoints(jp_fetch, deploy, tmp_path):
    marker = tmp_path / "alt-ran"
    assert deploy.interpreters == {"alt": str(tmp_path / "python-alt")}
    marker.unlink()  # the check at start ran it once, to see that it can run the worker
    own = checkpoint_body("adder", **ADDER)
    assert own["environment"]["executable"] == sys.executable
    await call(jp_fetch, "checkpoints", method="POST", body=own)
    await call(jp_fetch, "nodes", method="POST", body={"name": "own", "checkpoint": "adder"})
    await until(lambda: deploy.node("own")["status"] == "Healthy", timeout=30,
                message="the node on the service's interpreter to be Healthy")
    assert not marker.exists()
    other = checkpoint_body("other", **ADDER)
    other["environment"]["executable"] = str(tmp_path / "python-alt")
    await call(jp_fetch, "checkpoints", method="POST", body=other)
    await call(jp_fetch, "nodes", method="POST", body={"name": "alt", "checkpoint": "other"})
    await until(lambda: deploy.node("alt")["status"] == "Healthy", timeout=30,
                message="the node on the configured interpreter to be Healthy")
    assert marker.exists()
