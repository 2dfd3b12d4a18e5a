"""The gateway against strangers, at the sizes of its issue: slow heads and an overloaded node.

    .venv/bin/python benchmarks/strangers.py            # ~2.5 min
    .venv/bin/python benchmarks/strangers.py --quick    # 200 heads once, 60 clients for 10 s

Method (benchmarks/README.md): `jupyter deploy serve` with its default limits, pinned to the
system-under-test CPU with its instances; the clients on the load CPU, each load in a process
of its own (wrk; the slow heads; this script, which waits meanwhile).

1. Slow heads, in rounds (3): wrk measures GET /healthz alone, then again while N connections
   (in a process of their own, 100 per loopback address 127.0.1.x, their first bytes spread
   over 1 s) each send a request head at one byte a second; each slow connection is timed from its first byte until the gateway
   closes it (its head deadline is 10 s), and what it was told is kept.
2. A client that never reads: 4 connections each send 200 pipelined requests for a 1 MB
   answer and read none; the peak memory of the service and its instance over 5 s.
3. Overload: a node with min = max = 1 whose cell takes 1 s, and C clients calling it on
   keep-alive connections for S seconds (a client refused with 429 or 503 tries again after a
   random wait of up to 0.2 s). Every answer's status and time is recorded: how many 200s came
   against the instance's capacity (S / 1 s), how fast refusals came, and whether any request
   outlived its deadline (the request timeout, 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
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
BIG_PAGE = {
    "name": "bigpage",
    "setup": "size = 1_000_000\n",
    "cell": "page = 'x' * size\n",
    "inputs": "size:int",
    "outputs": "page",
}
DEADLINE_S = 15.0  # the gateway's request timeout
MB = 1024 * 1024


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


SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"s" * 100


def source(i: int) -> str:
    """The loopback address the i-th slow client connects from: 100 per address. From one
    address, past 1,000 connections (max_per_client) the gateway refuses the next ones, wrk's
    included, and a measure of wrk meanwhile is one of those refusals."""
    return f"127.0.1.{1 + i // 100}"


def trickle(port: int, count: int, spread_s: float, limit_s: float = 60.0) -> dict[str, Any]:
    """`count` connections each sending SLOW_HEAD at one byte a second, their first bytes
    spread evenly over `spread_s`; how long each took to be closed and what it was told.

    One thread and a selector (no coroutine per connection), so that the clients cost their
    CPU little: they share it with wrk. The second byte of each goes half a second after
    the first, so that none is sent just as the gateway closes at a whole second (it would
    be answered with a reset, and the 408 lost)."""
    selector = selectors.DefaultSelector()
    socks = [socket.create_connection(("127.0.0.1", port), source_address=(source(i), 0))
             for i in range(count)]
    started = time.monotonic()
    first = [started + spread_s * i / count for i in range(count)]
    sends = [(at, i, 0) for i, at in enumerate(first)]  # (when, connection, byte)
    sent = list(first)  # when each first byte went: the gateway's clock starts there
    said: list[bytes] = [b""] * count
    closed: dict[int, float] = {}
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(sock, selectors.EVENT_READ, i)
    ready = False
    while len(closed) < count and time.monotonic() < started + limit_s:
        timeout = max(0.0, sends[0][0] - time.monotonic()) if sends else 1.0
        for key, _ in selector.select(timeout):
            i = key.data
            try:
                data = socks[i].recv(65536)
            except ConnectionResetError:
                data = b""
                said[i] = said[i] or b"(reset)"
            said[i] += data
            if not data:
                closed[i] = time.monotonic() - sent[i]
                selector.unregister(socks[i])
                socks[i].close()
        now = time.monotonic()
        while sends and sends[0][0] <= now:
            at, i, byte = heapq.heappop(sends)
            if i in closed or byte >= len(SLOW_HEAD):
                continue
            with contextlib.suppress(OSError):  # closed meanwhile: the selector says so
                socks[i].send(SLOW_HEAD[byte:byte + 1])
            if byte == 0:
                sent[i] = time.monotonic()
            heapq.heappush(sends, (first[i] + (0.5 if byte == 0 else byte + 0.5), i, byte + 1))
        if not ready and now >= first[-1]:
            ready = True
            print("trickling", flush=True)  # every head begun: the parent measures meanwhile
    for i, sock in enumerate(socks):
        if i not in closed:
            sock.close()
    answers = Counter(said[i][:12].decode(errors="replace") or "(closed)" for i in closed)
    return {"count": count, "spread_s": spread_s, "still_open": count - len(closed),
            "closed_after_s": list(closed.values()), "answers": dict(answers)}


def slow_heads(info: dict[str, Any], count: int, args: Any) -> dict[str, Any]:
    """Rounds of wrk on GET /healthz alone, then while a process of its own (on the load CPU,
    beside wrk) trickles `count` heads; the heads' close times and answers. Rounds, because
    other loads of a shared machine come and go: each pair is measured a few seconds apart."""
    url = info["gateway_url"] + "/healthz"
    port = info["gateway_url"].rsplit(":", 1)[1]
    rounds: list[dict[str, Any]] = []
    times: list[float] = []
    answers: Counter[str] = Counter()
    still_open = 0
    for _ in range(args.rounds):
        alone = wrk_get(url, args.wrk_seconds, args.load_cpu)
        command = ["taskset", "-c", args.load_cpu, sys.executable, __file__, "--trickle", port,
                   str(count), str(args.spread)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as clients:
            assert clients.stdout is not None
            if clients.stdout.readline().strip() != "trickling":
                raise RuntimeError("the slow clients did not start")
            during = wrk_get(url, args.wrk_seconds, args.load_cpu)
            heads = json.loads(clients.stdout.read())
        rounds.append({"alone": alone, "during": during})
        times += heads["closed_after_s"]
        answers.update(heads["answers"])
        still_open += heads["still_open"]
    times.sort()
    return {"count": count, "spread_s": args.spread, "rounds": rounds, "still_open": still_open,
            "closed_after_s": [times[0], statistics.median(times), times[-1]] if times else [],
            "answers": dict(answers)}


def rss(pids: list[int]) -> int:
    """The resident memory of these processes, in bytes (statm: pages, the second field)."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page for pid in pids)


def worker_pids(state_dir: str) -> list[int]:
    """The instance processes of the service whose state folder is `state_dir`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            command = (proc / "cmdline").read_bytes()
            if b"jupyter_deploy.worker" in command and state_dir.encode() in command:
                found.append(int(proc.name))
    return found


def never_reading(info: dict[str, Any], window_s: float = 5.0) -> dict[str, Any]:
    """4 connections each sending 200 pipelined requests for a 1 MB answer, and reading none:
    the peak memory of the service and its instance over `window_s`, against before."""
    from jupyter_deploy.client import DeployClient

    client = DeployClient(info["url"], info["token"])
    bench.pin_in_process(client, BIG_PAGE)
    key = client.create_node({"name": "bigpage", "checkpoint": "bigpage", "min": 1,
                              "max": 1})["key"]
    bench.wait_healthy(client, "bigpage")
    address = ("127.0.0.1", int(info["gateway_url"].rsplit(":", 1)[1]))
    body = json.dumps({"input": {"size": 1_000_000}}).encode()
    request = (f"POST /v1/nodes/bigpage:execute HTTP/1.1\r\nHost: gateway\r\n"
               f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(address, timeout=10) as warm:
        warm.sendall(request)
        warm.recv(12)
    pids = [int(info["pid"]), *worker_pids(info["state_dir"])]
    before = peak = rss(pids)
    sockets = [socket.create_connection(address, timeout=10) for _ in range(4)]
    try:
        for sock in sockets:
            sock.sendall(request * 200)
        until = time.monotonic() + window_s
        while time.monotonic() < until:
            peak = max(peak, rss(pids))
            time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()
    with socket.create_connection(address, timeout=10) as after:
        after.sendall(request)
        still = after.recv(12).decode(errors="replace")
    client.delete_node("bigpage")
    return {"before_mb": before / MB, "peak_mb": peak / MB, "grown_mb": (peak - before) / MB,
            "pids": len(pids), "afterwards": still}


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
    heads = results.get("heads")
    if heads:
        closed = " / ".join(f"{t:.2f}" for t in heads["closed_after_s"])
        print(f"\n{heads['count']} heads at 1 byte/s (their first bytes over "
              f"{heads['spread_s']:g} s; head deadline 10 s): closed after {closed} s "
              f"(min / median / max), answers {heads['answers']}, still open "
              f"{heads['still_open']}")
        for i, pair in enumerate(heads["rounds"], 1):
            alone, during = pair["alone"], pair["during"]
            print(f"  round {i}: GET /healthz alone {alone['rps']:.0f} req/s, p50 "
                  f"{alone['p50_ms']:.2f} ms, p99 {alone['p99_ms']:.2f} ms; meanwhile "
                  f"{during['rps']:.0f} req/s, p50 {during['p50_ms']:.2f} ms, p99 "
                  f"{during['p99_ms']:.2f} ms ({during['p99_ms'] / alone['p99_ms']:.2f}x); "
                  f"not 200: {alone['non_2xx'] + alone['socket_errors']} alone, "
                  f"{during['non_2xx'] + during['socket_errors']} meanwhile")
        medians = {when: {q: statistics.median(pair[when][q] for pair in heads["rounds"])
                          for q in ("p50_ms", "p99_ms")} for when in ("alone", "during")}
        print(f"  medians: p50 {medians['alone']['p50_ms']:.2f} ms alone, "
              f"{medians['during']['p50_ms']:.2f} ms meanwhile; p99 "
              f"{medians['alone']['p99_ms']:.2f} ms alone, {medians['during']['p99_ms']:.2f} "
              f"ms meanwhile ({medians['during']['p99_ms'] / medians['alone']['p99_ms']:.2f}x)")
    memory = results.get("memory")
    if memory:
        print(f"\nnever-reading client (800 pipelined 1 MB answers on 4 sockets): the service "
              f"and its instance {memory['before_mb']:.1f} MB before, peak "
              f"{memory['peak_mb']:.1f} MB (+{memory['grown_mb']:.1f} MB, bound 20); a request "
              f"afterwards got {memory['afterwards']}")
    load = results.get("overload")
    if not load:
        return
    ok = load["by_status"].get(200, 0)
    print(f"\n{load['clients']} clients for {load['seconds']:g} s on min = max = 1, a 1 s cell: "
          f"answers by status {dict(sorted(load['by_status'].items()))}")
    print(f"  200s: {ok} of a capacity of {load['capacity']} ({ok / load['capacity']:.0%}), "
          f"seconds p50 / p95 / p99 / max (ms) {quantiles(load['ok_s'])}")
    print(f"  429/503: ms p50 / p95 / p99 / max {quantiles(load['refused_s'])}; within 50 ms: "
          f"{sum(s <= 0.05 for s in load['refused_s']) / max(1, len(load['refused_s'])):.1%}")
    print(f"  answers later than the {DEADLINE_S:g} s deadline: {load['late']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--trickle"]:  # the slow clients' own process: PORT COUNT SPREAD
        print(json.dumps(trickle(int(argv[1]), int(argv[2]), float(argv[3]))), flush=True)
        return 0
    parser = bench.load_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=1000, help="slow connections (1000)")
    parser.add_argument("--spread", type=float, default=1.0,
                        help="seconds over which the slow heads begin (1; 0: all at once)")
    parser.add_argument("--wrk-seconds", type=float, default=4.0,
                        help="seconds of each wrk run on /healthz (4; the heads last 10)")
    parser.add_argument("--rounds", type=int, default=3, help="slow-head rounds (3)")
    parser.add_argument("--clients", type=int, default=200, help="overload clients (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="overload seconds (30)")
    parser.add_argument("--only", choices=("heads", "memory", "overload"), help="one part")
    args = parser.parse_args(argv)
    if args.quick:
        args.heads, args.clients, args.seconds, args.rounds = 200, 60, 10.0, 1
    os.sched_setaffinity(0, {int(args.load_cpu)})
    results: dict[str, Any] = {}

    def work(info: dict[str, Any]) -> None:
        if args.only in (None, "heads"):
            results["heads"] = slow_heads(info, args.heads, args)
        if args.only in (None, "memory"):
            results["memory"] = never_reading(info)
        if args.only in (None, "overload"):
            results["overload"] = asyncio.run(overload(info, args.clients, args.seconds))

    ok = bench.with_service("jd-bench-strangers-", args.sut_cpu, work)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
