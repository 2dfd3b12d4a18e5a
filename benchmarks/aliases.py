"""Aliases and autoscaling, by the method of bench.py (wrk on CPU 0, the service on CPU 1).

    .venv/bin/python benchmarks/aliases.py [--duration 10] [--quick]

Prints: requests/s and latency through an alias vs through its node directly (c=32); p99
while the alias is re-pointed to another node and the old node deleted vs steady state, with
the failed requests; the instance count over time when 32 clients step onto a node with
min 1, max 4 and then leave.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)

SLOW = {**bench.SUM, "name": "slow", "cell": "import time\ntime.sleep(0.005)\ntotal = a + b\n",
        "expect": None}


class Timeline(threading.Thread):
    """(seconds, instances, Healthy instances) of a node, sampled until stopped."""

    def __init__(self, client: Any, node: str, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.client, self.node, self.every_s = client, node, every_s
        self.samples: list[tuple[float, int, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopping.is_set():
            instances = self.client.node(self.node)["instances"]
            healthy = sum(i["status"] == "Healthy" for i in instances)
            self.samples.append((round(time.monotonic() - started, 1), len(instances), healthy))
            self.stopping.wait(self.every_s)

    def stop(self) -> list[tuple[float, int, int]]:
        self.stopping.set()
        self.join()
        return self.samples


def run(args: argparse.Namespace, client: Any, results: dict[str, Any]) -> None:
    body = json.dumps({"input": bench.SUM["input"]}).encode()
    for name in ("blue", "green"):
        bench.pin_in_process(client, {**bench.SUM, "name": name})
        client.create_node({"name": name, "checkpoint": name, "min": 1})
        bench.wait_healthy(client, name)
    created = client.set_alias("shop", {"nodes": {"blue": 100}, "public": True})
    alias_url = created["alias"]["endpoint"]

    # 1. alias vs node, c=32
    bench.pin_in_process(client, {**bench.SUM, "name": "solo"})
    solo = client.create_node({"name": "solo", "checkpoint": "solo", "min": 1})
    bench.wait_healthy(client, "solo")
    node_url, node_key = solo["node"]["endpoint"], solo["key"]
    for label, url, key in (("node", node_url, node_key), ("alias", alias_url, None)):
        bench.wrk(url, body, key, 32, args.warmup, args.load_cpu)
        results[f"{label}_c32"] = bench.wrk(url, body, key, 32, args.duration, args.load_cpu)
        bench.log(f"through the {label}: {results[f'{label}_c32']['rps']:.0f} req/s, p99 "
                  f"{results[f'{label}_c32']['p99_ms']:.2f} ms")
    client.delete_node("solo")

    # 2. p99 while the alias switches blue -> green and blue is deleted
    def switch() -> None:
        time.sleep(args.duration / 3)
        client.set_alias("shop", {"nodes": {"green": 100}})
        time.sleep(args.duration / 6)
        client.delete_node("blue")

    switcher = threading.Thread(target=switch)
    switcher.start()
    results["switch_c32"] = bench.wrk(alias_url, body, None, 32, args.duration, args.load_cpu)
    switcher.join()
    w = results["switch_c32"]
    bench.log(f"during the switch: {w['rps']:.0f} req/s, p99 {w['p99_ms']:.2f} ms, "
              f"non-2xx {w['non_2xx']}, socket errors {w['socket_errors']}")
    client.delete_alias("shop")
    client.delete_node("green")

    # 3. a step from 1 to 32 clients onto a node with min 1, max 4, and back
    bench.pin_in_process(client, SLOW)
    step = client.create_node({"name": "slow", "checkpoint": "slow", "min": 1, "max": 4,
                               "autoscale": {"target_concurrency": 2, "up_delay_s": 1,
                                             "down_delay_s": args.down_delay}})
    bench.wait_healthy(client, "slow")
    timeline = Timeline(client, "slow")
    timeline.start()
    url, key = step["node"]["endpoint"], step["key"]
    phases = {"c=1": bench.wrk(url, body, key, 1, args.duration / 2, args.load_cpu)}
    phases["c=32"] = bench.wrk(url, body, key, 32, args.duration, args.load_cpu)
    time.sleep(args.down_delay + 3)
    results["step"] = {"phases": phases, "timeline": timeline.stop()}
    client.delete_node("slow")


def report(results: dict[str, Any]) -> None:
    rows = []
    for label, key in (("node", "node_c32"), ("alias", "alias_c32"),
                       ("alias, switching", "switch_c32")):
        w = results[key]
        rows.append([label, "32", f"{w['rps']:.0f}", f"{w['p50_ms']:.2f}", f"{w['p99_ms']:.2f}",
                     str(w["non_2xx"]), str(w["socket_errors"])])
    print("\n" + bench.table(rows, ["through", "c", "req/s", "p50 ms", "p99 ms", "non-2xx",
                                    "sock err"]))
    step = results["step"]
    print("\nautoscaling (min 1, max 4, target 2 in flight per instance): wrk c=1 "
          f"{step['phases']['c=1']['rps']:.0f} req/s, then c=32 "
          f"{step['phases']['c=32']['rps']:.0f} req/s, then idle")
    print("t s    instances  Healthy")
    last = None
    for t, count, healthy in step["timeline"]:
        if (count, healthy) != last:
            print(f"{t:5.1f}  {count:9d}  {healthy:7d}")
            last = (count, healthy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--down-delay", type=float, default=5.0,
                        help="scale-down delay of the autoscaled node (5 s)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--load-cpu", default="0")
    parser.add_argument("--sut-cpu", default="1")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {int(args.load_cpu)})

    tmp = Path(tempfile.mkdtemp(prefix="jd-bench-aliases-"))
    (tmp / "runtime").mkdir()
    results: dict[str, Any] = {}
    failed = bench.with_service(tmp, args.sut_cpu, lambda client: run(args, client, results))
    for pid, command in bench.leftovers(tmp):
        failed = True
        bench.log(f"left over, terminating: {pid} {command}")
        os.kill(pid, signal.SIGTERM)
    shutil.rmtree(tmp, ignore_errors=True)
    if not failed:
        report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
