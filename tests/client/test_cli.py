"""`jupyter deploy ...` as a user runs it, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from ..conftest import Service, alive, checkpoint_body, wait_for, worker_pids

ROOT = Path(__file__).resolve().parents[2]


def jupyter_deploy(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_run_quickstart_with_its_own_service(tmp_path):
    """What `make demo` does: start a service, run the notebook, call the node, stop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_DEPLOY_")}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DEPLOY_STATE_DIR=str(tmp_path / "state"))
    summary = tmp_path / "summary.json"
    done = jupyter_deploy("run", str(ROOT / "examples" / "quickstart.ipynb"), "--exit-after-run",
                          "--gateway-port=0", "--gateway-grpc-port=0", f"--summary={summary}", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Started a deploy service \(pid \d+\)", done.stdout)
    answer = re.search(r'-> 200 (\{"output": \{"prediction": .*\}\})', done.stdout)
    assert answer, done.stdout
    prediction = json.loads(answer.group(1))["output"]["prediction"]
    assert abs(prediction - (3.0 * 4.0 - 2.0 * 1.5 + 5.0)) < 0.5  # the model learnt y
    nodes = json.loads(summary.read_text())
    assert [node["node"] for node in nodes] == ["predictor", "batch"]
    assert all(node["key"].startswith("jd_") for node in nodes)
    assert re.search(r'-> 200 \{"output": \{"predictions": \[13\.\d+, ', done.stdout)
    assert not worker_pids(tmp_path / "state")
    assert not list((tmp_path / "runtime").glob("jupyter_deploy-*.json"))


def test_cli_mirrors_the_magics(service, tmp_path):
    service.client.add_checkpoint(checkpoint_body("doubler", "y = x * 2", "x:int", "y", x=1))

    def deploy(*args: str) -> subprocess.CompletedProcess:
        return jupyter_deploy(*args, env=service.env, cwd=tmp_path)

    created = deploy("node", "create", "cli-doubler", "--checkpoint", "doubler", "--min", "2")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Node cli-doubler is Healthy (checkpoint doubler@")
    assert "key:      jd_" in created.stdout
    listed = deploy("node", "list")
    assert listed.stdout.startswith("NODE") and "cli-doubler  Healthy  2/2..2" in listed.stdout
    called = deploy("call", "cli-doubler", "x=21")
    assert (called.returncode, called.stdout) == (0, '{"y": 42}\n')
    assert "doubler@1" in deploy("checkpoint", "list").stdout
    assert deploy("node", "logs", "cli-doubler").stdout.count("restored doubler") == 2
    assert deploy("node", "delete", "cli-doubler").stdout == "Node cli-doubler deleted.\n"
    done = deploy("node", "status", "cli-doubler")
    assert done.returncode == 1 and "no node 'cli-doubler'" in done.stderr
    done = deploy("call", "nobody", "x")
    assert done.returncode == 1 and "inputs take NAME=VALUE, got 'x'" in done.stderr


def test_no_service_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_DEPLOY_")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path)
    done = jupyter_deploy("node", "list", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "no deploy service found" in done.stderr


def test_restarted_service_brings_its_nodes_back(tmp_path):
    """Nodes, checkpoints and keys live in the store: a restart serves them again."""
    first = Service(tmp_path)
    try:
        node, key = first.create_node(
            "keeper", checkpoint_body("keeper", "y = x * 2", "x:int", "y", x=1), min=2)
        old_pids = {i["pid"] for i in node["instances"]}
    finally:
        first.stop()
    assert not any(alive(pid) for pid in old_pids)
    second = Service(tmp_path)
    try:
        wait_for(lambda: second.client.node("keeper")["status"] == "Healthy", timeout=30,
                 message="the node to come back")
        node = second.client.node("keeper")
        assert len(node["instances"]) == 2 and not {i["pid"] for i in node["instances"]} & old_pids
        request = urllib.request.Request(
            node["endpoint"], data=json.dumps({"input": {"x": 21}}).encode(), method="POST",
            headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"output": {"y": 42}}
    finally:
        second.stop()
    assert not worker_pids(tmp_path / "state")
