"""`jupyter deploy ...` as a user runs it, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import worker_pids

ROOT = Path(__file__).resolve().parents[1]


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
                          "--gateway-port=0", f"--summary={summary}", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Started a deploy service \(pid \d+\)", done.stdout)
    answer = re.search(r'-> 200 (\{"output": \{"prediction": .*\}\})', done.stdout)
    assert answer, done.stdout
    prediction = json.loads(answer.group(1))["output"]["prediction"]
    assert abs(prediction - (3.0 * 4.0 - 2.0 * 1.5 + 5.0)) < 0.5  # the model learnt y
    [node] = json.loads(summary.read_text())
    assert node["node"] == "predictor" and node["key"].startswith("jd_")
    assert not worker_pids(tmp_path / "state")
    assert not list((tmp_path / "runtime").glob("jupyter_deploy-*.json"))


def test_node_list_finds_the_service(service, tmp_path):
    done = jupyter_deploy("node", "list", env=service.env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NODE") or done.stdout.strip() == "No nodes."
    done = jupyter_deploy("node", "status", "nobody", env=service.env, cwd=tmp_path)
    assert done.returncode == 1 and "no node 'nobody'" in done.stderr


def test_no_service_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_DEPLOY_")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path)
    done = jupyter_deploy("node", "list", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "no deploy service found" in done.stderr
