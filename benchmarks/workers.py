"""The gateway in worker processes (issue 13), by the method of bench.py (load on CPU 0,
service, gateway workers and instances on CPU 1), in one run:

    .venv/bin/python benchmarks/workers.py [--duration 5] [--warmup 1]

1. the bare Tornado app (bare_tornado.py), wrk at c=1 and c=32: the baseline;
2. with 1, then 2 gateway workers: the `total = a + b` node (one instance), wrk through the
   gateway at c=1 and c=32;
3. with 2 workers: the quickstart node, REST (Python asyncio client) against gRPC (the
   typed service, a grpc.aio client) at c=32, as protocols.py measures them;
4. with 2 workers: 32 REST clients call the node while the service gets SIGTERM and a new
   one starts: failures, the longest time without an answer, and the time from the new
   service's start to its first routed request.

`--sut-cpu ''` lets the workers use both cores (the load generator then shares them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402
import protocols  # noqa: E402


def serve(tmp: Path, args: argparse.Namespace, workers: int, log_file: Any) -> tuple[Any, dict]:
    """`jupyter deploy serve` with `workers` gateway workers (bench.start_service's way)."""
    return bench.start_service(tmp, args.python, args.sut_cpu, log_file,
                               extra=[f"--DeployApp.gateway_workers={workers}"])


def through_gateway(args: argparse.Namespace, workers: int, results: dict[str, Any]) -> None:
    """wrk through the gateway of a service with `workers` gateway workers."""
    from jupyter_deploy.client import DeployClient

    def body(info: dict[str, Any]) -> None:
        client = DeployClient(info["url"], info["token"])
        bench.pin_in_process(client, bench.SUM)
        created = client.create_node({"name": "sum", "checkpoint": "sum", "min": 1})
        bench.wait_healthy(client, "sum")
        endpoint, key = created["node"]["endpoint"], created["key"]
        bench.check_answer(endpoint, bench.SUM, key)
        for c in args.connections:
            figures = bench.load_test(endpoint, bench.SUM, key, c, args)
            results[f"gateway, {workers} worker(s), c={c}"] = figures
            bench.log(f"{workers} worker(s) c={c}: {figures['rps']:.0f} req/s, p50 "
                      f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms")
        if workers == 2:
            protocols_and_restart(args, info, client, results)

    bench.with_service(f"jd-bench-workers{workers}-", args.sut_cpu, body, args.python,
                       extra=[f"--DeployApp.gateway_workers={workers}"])


def protocols_and_restart(args: argparse.Namespace, info: dict[str, Any], client: Any,
                          results: dict[str, Any]) -> None:
    bench.pin_in_process(client, {**bench.PREDICT, "name": "predict"})
    created = client.create_node({"name": protocols.NODE, "checkpoint": "predict", "min": 1})
    bench.wait_healthy(client, protocols.NODE)
    endpoint, key = created["node"]["endpoint"], created["key"]
    for kind in ("REST, Python", "gRPC, Python"):
        if args.warmup > 0:
            protocols.measure(kind, info, endpoint, key, 32, args.warmup, args)
        figures = protocols.measure(kind, info, endpoint, key, 32, args.duration, args)
        results[f"{kind}, 2 workers, c=32"] = figures
        bench.log(f"{kind} c=32: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
                  f"p99 {figures['p99_ms']:.2f} ms")
    results["service restart"] = restart(args, info, endpoint, key)


def restart(args: argparse.Namespace, info: dict[str, Any], endpoint: str, key: str
            ) -> dict[str, Any]:
    """32 clients through the restart of the service; what they saw."""
    body = json.dumps({"input": bench.PREDICT["input"]}).encode()
    answers: list[float] = []  # when each 200 came
    other: list[float] = []  # when each answer of another status came (502, 503)
    failures: list[float] = []  # when a connection failed
    stop = threading.Event()

    async def clients() -> None:
        import urllib.parse

        url = urllib.parse.urlsplit(endpoint)
        request = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer "
                   f"{key}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

        async def one() -> None:
            streams = None
            while not stop.is_set():
                try:
                    if streams is None:
                        streams = await asyncio.open_connection(url.hostname, url.port)
                    reader, writer = streams
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = protocols.CONTENT_LENGTH.search(head)
                    await reader.readexactly(int(length.group(1)) if length else 0)
                    (answers if head[9:12] == b"200" else other).append(time.monotonic())
                except (OSError, asyncio.IncompleteReadError):
                    failures.append(time.monotonic())
                    streams = None
            if streams is not None:
                streams[1].close()

        await asyncio.gather(*(one() for _ in range(32)))

    thread = threading.Thread(target=lambda: asyncio.run(clients()))
    thread.start()
    time.sleep(1.0)
    process = info["process"]
    stopped_at = time.monotonic()
    bench.stop_service(process)  # SIGTERM: the gateway workers serve on
    started_at = time.monotonic()
    with open(info["folder"] / "service2.log", "wb") as log_file:  # the child keeps its own
        new, new_info = serve(info["folder"], args, 2, log_file)
    ready_at = time.monotonic()
    info["process"] = new  # with_service stops this one
    time.sleep(6.0)  # until the new service's instances serve, if it could not take them back
    stop.set()
    thread.join(30)
    during = sorted(t for t in answers if stopped_at - 0.5 <= t <= ready_at + 0.5)
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    first = min((t for t in answers if t >= started_at), default=None)
    routed = min((t for t in answers + other if t >= started_at), default=None)
    figures = {
        "requests": len(answers), "not_200": len(other), "connection_failures": len(failures),
        "restart_to_first_answer_ms": None if routed is None else
        round((routed - started_at) * 1000, 2),
        "service_down_s": round(ready_at - stopped_at, 3),
        "longest_gap_ms": round(max(gaps, default=0.0) * 1000, 2),
        "restart_to_first_200_ms": None if first is None else
        round((first - started_at) * 1000, 2),
        "same_gateway": new_info["gateway_url"] == info["gateway_url"],
    }
    bench.log(f"service restart: {figures}")
    return figures


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [[name, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
             str(r.get("requests", "")),
             str(r.get("errors", r.get("non_2xx", 0) + r.get("socket_errors", 0)))]
            for name, r in results.items() if "rps" in r]
    print(f"\n{args.duration:g} s per run after {args.warmup:g} s of warm-up; load on CPU "
          f"{args.load_cpu}, service on CPU {args.sut_cpu}")
    print(bench.table(rows, ["what", "req/s", "p50 ms", "p99 ms", "requests", "errors"]))
    if "service restart" in results:
        print("service restart under 32 clients:", json.dumps(results["service restart"]))


def main(argv: list[str] | None = None) -> int:
    parser = bench.load_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    args.connections = [int(c) for c in args.connections.split(",")]
    args.load_cpu, args.sut_cpu = args.load_cpu or None, args.sut_cpu or None
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    tornado = bench.bare_tornado(args)
    for c, figures in tornado.items():
        results[f"bare Tornado, c={c}"] = figures
    for workers in (1, 2):
        try:
            through_gateway(args, workers, results)
        except Exception as exc:  # noqa: BLE001 - report what was measured
            bench.log(f"{workers} worker(s): FAILED {type(exc).__name__}: {exc}")
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
