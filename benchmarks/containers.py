"""Measure the docker runtime: checkpoint image build time (cold and cached) and the time
from creating a node from a Docker image to `Healthy`.

    .venv/bin/python benchmarks/containers.py [--runs 3] [--json FILE]

Needs a running engine with the local base image (`make engine`). It starts its own service
(own state and runtime folders in a temporary folder) and removes every container and image
it made, by id, at the end (the base image stays).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)

from jupyter_deploy.client import DeployClient  # noqa: E402

APP = HERE.parent / "tests" / "docker_app"
BASE = "jupyter-deploy-base:bookworm"


def wait_healthy(client: Any, name: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.node(name)["status"] != "Healthy":
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {name} not Healthy within {timeout_s:g} s: "
                               f"{json.dumps(client.node(name))[:2000]}")
        time.sleep(0.02)


def create_to_healthy(client: Any, spec: dict[str, Any]) -> float:
    started = time.perf_counter()
    client.create_node(spec)
    wait_healthy(client, spec["name"])
    return time.perf_counter() - started


def run(args: argparse.Namespace, client: Any, engine: Any, made: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    bench.pin_in_process(client, bench.SUM)
    checkpoint = {"name": "build", "checkpoint": "sum", "runtime": "docker"}
    # Cold: no image of this checkpoint yet (the pip layer is built too).
    results["checkpoint_cold_s"] = create_to_healthy(client, checkpoint)
    made.update(c.image.id for c in engine.containers.list(
        filters={"label": "jupyter-deploy.node=build"}))
    client.delete_node("build")
    cached = []
    for run_number in range(args.runs):
        cached.append(create_to_healthy(client, {**checkpoint, "name": f"cached{run_number}"}))
        client.delete_node(f"cached{run_number}")
    results["checkpoint_cached_s"] = statistics.median(cached)
    image, _ = engine.images.build(path=str(APP), buildargs={"BASE": BASE}, rm=True,
                                   tag="jupyter-deploy-bench-app:latest")
    made.add(image.id)
    from_image = []
    for run_number in range(args.runs):
        spec = {"name": f"image{run_number}", "image": "jupyter-deploy-bench-app:latest",
                "port": 8080, "health": {"path": "/healthz", "interval_s": 1.0}}
        from_image.append(create_to_healthy(client, spec))
        client.delete_node(spec["name"])
    results["image_node_to_healthy_s"] = statistics.median(from_image)
    results["runs"] = args.runs
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cached builds and image nodes")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    import docker

    engine = docker.from_env()
    made: set[str] = set()
    results: dict[str, Any] = {}

    def work(info: dict[str, Any]) -> None:
        try:
            results.update(run(args, DeployClient(info["url"], info["token"]), engine, made))
        finally:  # the containers and images it made, by their labels and ids
            label = f"jupyter-deploy.service={Path(info['state_dir']).resolve()}"
            for container in engine.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
            for image in made:
                engine.images.remove(image, force=True)

    failed = not bench.with_service("jd-bench-containers-", None, work)
    if not failed:
        rows = [["checkpoint image build + node → Healthy, cold", results["checkpoint_cold_s"]],
                ["checkpoint node → Healthy, image cached (median)",
                 results["checkpoint_cached_s"]],
                ["Docker-image node → Healthy (median)", results["image_node_to_healthy_s"]]]
        print(bench.table([[name, f"{value:.2f} s"] for name, value in rows],
                          ["figure", "seconds"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
