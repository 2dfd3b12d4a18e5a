"""The gateway against strangers, at the sizes of its issue: slow heads and an overloaded node.

    .venv/bin/python benchmarks/strangers.py            # ~1.5 min
    .venv/bin/python benchmarks/strangers.py --quick    # 200 heads, 60 clients for 10 s

Method (benchmarks/README.md): `jupyter deploy serve` with its default limits, pinned to the
system-under-test CPU with its instances; the clients (this script, and wrk) on the load CPU.

1. Slow heads: wrk measures GET /healthz alone, then again while N connections each send a
   request head at one byte a second; each slow connection is timed until the gateway closes it
   (its head deadline is 10 s).
2. Overload: a node with min = max = 1 whose cell takes 1 s, and C clients calling it on
   keep-alive connections for S seconds (a client refused with 429 or 503 tries again after a
   random wait of up to 0.2 s). Every answer's status and time is recorded: how many 200s came
   against the instance's capacity (S / 1 s), how fast refusals came, and whether any request
   outlived its deadline (the request timeout, 15 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the helpers of the main benchmark)

SLEEPY = {
    "name": "sleepy",
    "setup": "import time\nseconds = 1.0\n",
    "cell": "time.sleep(seconds)\ndone = seconds\n",
    "inputs": "seconds:float",
    "outputs": "done:float",
}
DEADLINE_S = 15.0  # the gateway's request timeout


def quantiles(values: list[float]) -> str:
    """p50 / p95 / p99 / max in ms."""
    if not values:
        return "-"
    ordered = sorted(values)
    pick = [ordered[min(len(ordered) - 1, int(len(ordered) * q))] for q in (0.5, 0.95, 0.99)]
    return " / ".join(f"{v * 1000:.1f}" for v in [*pick, ordered[-1]])


def wrk_get(url: str, seconds: float, load_cpu: str) -> dict[str, Any]:
    command = ["taskset", "-c", load_cpu, "wrk", "-t1", "-c4", f"-d{round(seconds)}s",
               "--latency", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    return bench.parse_wrk(done.stdout)


async def slow_head(port: int) -> tuple[float, bytes]:
    """A head sent one byte a second; (seconds until the gateway closed, what it said)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    said = b""
    for byte in b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"s" * 100:
        writer.write(bytes([byte]))
        try:
            said += await asyncio.wait_for(reader.read(), 1.0)
        except TimeoutError:
            continue
        break
    writer.close()
    return time.perf_counter() - started, said


async def slow_heads(info: dict[str, Any], count: int, args: Any) -> dict[str, Any]:
    url = info["gateway_url"] + "/healthz"
    port = int(info["gateway_url"].rsplit(":", 1)[1])
    alone = await asyncio.to_thread(wrk_get, url, 5, args.load_cpu)
    slow = [asyncio.ensure_future(slow_head(port)) for _ in range(count)]
    await asyncio.sleep(1.0)  # all connected and trickling
    during = await asyncio.to_thread(wrk_get, url, 5, args.load_cpu)
    closed = await asyncio.gather(*slow)
    times = sorted(seconds for seconds, _ in closed)
    statuses = sorted({said[:12].decode(errors="replace") or "(closed)" for _, said in closed})
    return {"count": count, "closed_after_s": [times[0], statistics.median(times), times[-1]],
            "answers": statuses, "alone": alone, "during": during}


async def call(port: int, key: str, until: float, answers: list[tuple[int, float]]) -> None:
    """Call the node on one keep-alive connection until `until`; (status, seconds) each."""
    body = json.dumps({"input": {"seconds": 1.0}}).encode()
    head = (f"POST /v1/nodes/sleepy:execute HTTP/1.1\r\nHost: gateway\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            sent = time.monotonic()
            writer.write(head + body)
            status, length = 0, 0
            line = await reader.readuntil(b"\r\n\r\n")
            for i, field in enumerate(line.decode("latin-1").split("\r\n")):
                if i == 0:
                    status = int(field.split()[1])
                elif field.lower().startswith("content-length:"):
                    length = int(field.split(":", 1)[1])
            await reader.readexactly(length)
            answers.append((status, time.monotonic() - sent))
            if status in (429, 503):
                await asyncio.sleep(random.uniform(0, 0.2))
    finally:
        writer.close()


async def overload(info: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    from jupyter_deploy.client import DeployClient

    client = DeployClient(info["url"], info["token"])
    await asyncio.to_thread(bench.pin_in_process, client, SLEEPY)
    created = await asyncio.to_thread(client.create_node, {"name": "sleepy",
                                                           "checkpoint": "sleepy",
                                                           "min": 1, "max": 1})
    key = created["key"]
    await asyncio.to_thread(bench.wait_healthy, client, "sleepy")
    port = int(info["gateway_url"].rsplit(":", 1)[1])
    answers: list[tuple[int, float]] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(call(port, key, until, answers) for _ in range(clients)))
    by_status: dict[int, int] = {}
    for status, _ in answers:
        by_status[status] = by_status.get(status, 0) + 1
    return {"clients": clients, "seconds": seconds, "capacity": int(seconds / 1.0),
            "by_status": by_status,
            "ok_s": [s for status, s in answers if status == 200],
            "refused_s": [s for status, s in answers if status in (429, 503)],
            "late": sum(s > DEADLINE_S for _, s in answers)}


def report(results: dict[str, Any]) -> None:
    heads = results["heads"]
    print(f"\n{heads['count']} heads at 1 byte/s (head deadline 10 s): closed after "
          + " / ".join(f"{t:.2f}" for t in heads["closed_after_s"]) + " s (min / median / max), "
          f"answers {heads['answers']}")
    for when in ("alone", "during"):
        w = heads[when]
        print(f"  GET /healthz {when:6}: {w['rps']:.0f} req/s, p50 {w['p50_ms']:.2f} ms, "
              f"p99 {w['p99_ms']:.2f} ms")
    print(f"  p99 during / alone: {heads['during']['p99_ms'] / heads['alone']['p99_ms']:.2f}")
    load = results["overload"]
    ok = load["by_status"].get(200, 0)
    print(f"\n{load['clients']} clients for {load['seconds']:g} s on min = max = 1, a 1 s cell: "
          f"answers by status {dict(sorted(load['by_status'].items()))}")
    print(f"  200s: {ok} of a capacity of {load['capacity']} ({ok / load['capacity']:.0%}), "
          f"seconds p50 / p95 / p99 / max (ms) {quantiles(load['ok_s'])}")
    print(f"  429/503: ms p50 / p95 / p99 / max {quantiles(load['refused_s'])}; within 50 ms: "
          f"{sum(s <= 0.05 for s in load['refused_s']) / max(1, len(load['refused_s'])):.1%}")
    print(f"  answers later than the {DEADLINE_S:g} s deadline: {load['late']}")


def main(argv: list[str] | None = None) -> int:
    parser = bench.load_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=1000, help="slow connections (1000)")
    parser.add_argument("--clients", type=int, default=200, help="overload clients (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="overload seconds (30)")
    args = parser.parse_args(argv)
    if args.quick:
        args.heads, args.clients, args.seconds = 200, 60, 10.0
    os.sched_setaffinity(0, {int(args.load_cpu)})
    results: dict[str, Any] = {}

    def work(info: dict[str, Any]) -> None:
        results["heads"] = asyncio.run(slow_heads(info, args.heads, args))
        results["overload"] = asyncio.run(overload(info, args.clients, args.seconds))

    ok = bench.with_service("jd-bench-strangers-", args.sut_cpu, work)
    if results.get("overload"):
        report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
