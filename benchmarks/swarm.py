"""The swarm runtime on the two-host lab (scripts/swarm-lab.sh up; issue 14).

    .venv/bin/python benchmarks/swarm.py [--duration 10] [--connections 32]

Prints: create to Healthy of a checkpoint node on Swarm (a new checkpoint: image built,
pushed, pulled by a host that has it cached but for the new layers; then by a host whose
images were all pruned, a full pull; then once more there, cached), and wrk at c=32 through
the gateway to one Swarm instance vs to one local process instance of the same checkpoint.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)

from jupyter_deploy.client import DeployClient  # noqa: E402
from tests.runtimes import swarm_lab  # noqa: E402


def start(tmp: Path, values: dict[str, str], log_file: Any) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, "-m", "jupyter_deploy.cli", "serve", "--gateway-port=0",
               "--gateway-grpc-port=0", f"--port={bench.free_port()}",
               f"--state-dir={tmp / 'state'}", *swarm_lab.options(values)]
    process = subprocess.Popen(command, env=bench.clean_env(tmp), cwd=tmp,
                               stdin=subprocess.DEVNULL, stdout=log_file,
                               stderr=subprocess.STDOUT)
    announcement = tmp / "runtime" / f"jupyter_deploy-{process.pid}.json"
    deadline = time.monotonic() + 60
    while not announcement.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start: {tmp / 'service.log'}")
        time.sleep(0.05)
    return process, json.loads(announcement.read_text())


def to_healthy(client: DeployClient, name: str, spec: dict[str, Any]) -> tuple[float, str]:
    """Seconds from POST /nodes to Healthy; the node's key."""
    began = time.perf_counter()
    key = client.create_node({"name": name, **spec})["key"]
    bench.wait_healthy(client, name)
    return time.perf_counter() - began, key


def run(args: argparse.Namespace, values: dict[str, str], client: DeployClient,
        gateway: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    import docker

    worker = docker.DockerClient(base_url=values["SWARM_LAB_WORKER"], timeout=120)
    worker.containers.prune()  # what ended there holds no image back
    pruned = worker.images.prune(filters={"dangling": False})
    results["worker images pruned (MB)"] = round((pruned.get("SpaceReclaimed") or 0) / 2**20)
    cell = {**bench.SUM, "name": "swsum", "cell": f"total = a + b  # {time.time()}\n"}
    bench.pin_in_process(client, cell)  # a new checkpoint: a new image
    spec = {"checkpoint": "swsum", "runtime": "swarm", "min": 1}
    for name, zone, what in (("built", "a", "build + push + pull of the new layers (host a)"),
                             ("pulled", "b", "full pull (host b, images pruned)"),
                             ("cached", "b", "cached (host b)")):
        seconds, key = to_healthy(client, f"sw-{name}", {
            **spec, "placement": [f"node.labels.zone=={zone}"]})
        results[f"create to Healthy: {what} (s)"] = round(seconds, 2)
        bench.log(f"{what}: {seconds:.2f} s")
        if name != "cached":
            client.delete_node(f"sw-{name}")
    _, process_key = to_healthy(client, "local", {"checkpoint": "swsum", "min": 1})
    body = json.dumps({"input": cell["input"]}).encode()
    for name, node_key in (("sw-cached", key), ("local", process_key)):
        url = f"{gateway}/v1/nodes/{name}:execute"
        bench.wrk(url, body, node_key, args.connections, 2, None)  # warm-up
        load = bench.wrk(url, body, node_key, args.connections, args.duration, None)
        runtime = "swarm (instance on 10.77.0.2)" if name.startswith("sw") else "process"
        results[f"c={args.connections} via the gateway to {runtime}"] = load
        bench.log(f"{runtime}: {load['rps']:.0f} req/s, p50 {load['p50_ms']:.2f} ms, "
                  f"p99 {load['p99_ms']:.2f} ms")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each load")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    values = swarm_lab.lab()
    if isinstance(values, str):
        print(f"swarm benchmark: {values}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="jd-swarm-bench-"))
    (tmp / "runtime").mkdir()
    with open(tmp / "service.log", "wb") as log_file:
        process, info = start(tmp, values, log_file)
        client = DeployClient(info["url"], info["token"])
        try:
            results = run(args, values, client, info["gateway_url"])
        finally:
            for node in client.nodes():
                client.delete_node(node["name"])
            deadline = time.monotonic() + 60
            while client.nodes() and time.monotonic() < deadline:
                time.sleep(0.2)
            bench.stop_service(process)
            swarm_lab.remove_images(tmp / "state")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
