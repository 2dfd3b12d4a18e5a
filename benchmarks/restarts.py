"""The Jupyter server is stopped and started again under load: what the gateway's callers see.

    .venv/bin/python benchmarks/restarts.py [--duration 30] [--clients 32] [--restarts 1]

A notebook server (the extension in its default, client mode) starts the deploy service of a
fresh state folder; a node of two instances and an alias to it are created through the
server's proxied control API. Then `--clients` keep-alive callers, half on the node and half
on the alias, call the gateway for `--duration` seconds while the notebook server is stopped
(SIGTERM) and started again `--restarts` times, evenly spaced. Prints, for each endpoint,
the requests, the failures (any answer but 200, a dropped or refused connection), req/s, p50
and p99, and whether the service and the instances after are the ones from before.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jupyter_deploy.client import DeployClient, discovery  # noqa: E402
from tests.conftest import checkpoint_body, wait_for  # noqa: E402
from tests.control.load import Load, Target, percentile  # noqa: E402
from tests.control.servers import NotebookServer, environment, stop_all, stop_service  # noqa: E402

CELL = dict(source="total = (a + b) * scale", inputs="a:float,b:float", outputs="total",
            state={"scale": 2.0}, a=1.0, b=2.0)


def deploy(client: DeployClient) -> list[Target]:
    """The node and the alias to call, each with its key."""
    client.add_checkpoint(checkpoint_body("adder", **CELL))
    key = client.create_node({"name": "adder", "checkpoint": "adder", "min": 2,
                              "max_queue": 64})["key"]
    wait_for(lambda: client.node("adder")["status"] == "Healthy", timeout=60,
             message="the node to be Healthy")
    alias = client.set_alias("shop", {"nodes": {"adder": 100}})
    body = json.dumps({"input": {"a": 1.0, "b": 2.0}}).encode()
    return [Target(client.node("adder")["endpoint"], key, body),
            Target(alias["alias"]["endpoint"], alias["key"], body)]


def run(args: argparse.Namespace, root: Path) -> dict[str, object]:
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    client = DeployClient(server.api, server.token)
    targets = deploy(client)
    before = ({i["id"] for i in client.node("adder")["instances"]},
              discovery.read_service(root / "state")["pid"])  # type: ignore[index]
    load = Load(targets, args.clients)
    started = time.monotonic()
    load.start()
    restarts = []
    for n in range(args.restarts):
        time.sleep(max(0.0, started + args.duration * (n + 1) / (args.restarts + 1)
                       - time.monotonic()))
        begun = time.monotonic()
        server.stop()
        server = NotebookServer(root, root / "state", name=f"again{n}")
        server.wait_ready()
        restarts.append(round(time.monotonic() - begun, 2))
    time.sleep(max(0.0, started + args.duration - time.monotonic()))
    tallies = load.stop()
    seconds = time.monotonic() - started
    client = DeployClient(server.api, server.token)
    after = ({i["id"] for i in client.node("adder")["instances"]},
             discovery.read_service(root / "state")["pid"])  # type: ignore[index]
    return {"seconds": round(seconds, 1), "clients": args.clients,
            "server_down_and_up_s": restarts, "same_service_and_instances": before == after,
            "endpoints": {endpoint: {"requests": t.ok + t.failed, "failed": t.failed,
                                     "rps": round(t.ok / seconds),
                                     "p50_ms": round(percentile(t.latencies, 0.5), 2),
                                     "p99_ms": round(percentile(t.latencies, 0.99), 2),
                                     "first_failures": t.failures}
                          for endpoint, t in tallies.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--restarts", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="restarts-") as folder:
        root = Path(folder)
        try:
            results = run(args, root)
        finally:
            stop_all()
            if discovery.read_service(root / "state") is not None:
                stop_service(root / "state", environment(root))
    print(json.dumps(results, indent=1))
    failed = sum(e["failed"] for e in results["endpoints"].values())  # type: ignore[attr-defined]
    return 0 if failed == 0 and results["same_service_and_instances"] else 1


if __name__ == "__main__":
    sys.exit(main())
