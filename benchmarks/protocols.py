"""REST vs gRPC through the gateway, by the method of bench.py (load on CPU 0, service on CPU 1).

    .venv/bin/python benchmarks/protocols.py [--duration 10] [--quick]

The quickstart's cell (examples/quickstart.ipynb: `prediction = predict_one(x1, x2)`, node
`predictor`) is pinned and deployed with one instance, then called at c=1 and c=32:

- REST with wrk (as bench.py does);
- REST with a Python asyncio load generator: one keep-alive connection per client;
- gRPC with a Python grpc.aio load generator: the node's typed service, its messages taken
  from the server's reflection, all clients on one channel (HTTP/2 streams);
- the same gRPC generator against grpcio alone (benchmarks/grpc_echo.py, on the service's
  CPU): what a Python gRPC server answers here with nothing behind it, a ceiling.

The two Python generators are alike (one event loop, a coroutine per client), so their
figures compare the protocols; wrk shows what the gateway serves when the client costs less.
Prints req/s, p50 and p99 for each, and the CPU time the serving side spent per answer (the
service, its gateway workers and the instance; or the echo server), from their processes'
own counters: on one pinned core, req/s is about 1 / that time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)

NODE = "predictor"
ECHO = "gRPC, Python, grpcio alone (echo)"
CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0

    return {"rps": len(ordered) / seconds, "p50_ms": pick(0.50), "p99_ms": pick(0.99),
            "requests": len(ordered), "errors": errors}


async def drive(callers: list[Callable[[], Awaitable[bool]]], seconds: float) -> dict[str, Any]:
    """Each caller in a loop of its own for `seconds`; the latencies of the good answers."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    started = loop.time()
    deadline = started + seconds

    async def client(call: Callable[[], Awaitable[bool]]) -> None:
        nonlocal errors
        while loop.time() < deadline:
            begun = time.perf_counter()
            ok = await call()
            if ok:
                latencies.append(time.perf_counter() - begun)
            else:
                errors += 1

    await asyncio.gather(*(client(call) for call in callers))
    return summary(latencies, errors, loop.time() - started)


async def rest_load(endpoint: str, key: str, body: bytes, connections: int,
                    seconds: float, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """`connections` keep-alive clients POSTing `body` (with `extra` headers) in a loop."""
    url = urllib.parse.urlsplit(endpoint)
    fields = "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
    request = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key}"
               f"\r\nContent-Type: application/json\r\n{fields}Content-Length: {len(body)}"
               "\r\n\r\n").encode() + body
    streams = [await asyncio.open_connection(url.hostname, url.port) for _ in range(connections)]

    def caller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        async def call() -> bool:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = CONTENT_LENGTH.search(head)
            if length or b"chunked" not in head.lower():
                await reader.readexactly(int(length.group(1)) if length else 0)
            else:  # a chunked answer (Ray Serve's uvicorn sends them)
                while size := int((await reader.readline()).strip() or b"0", 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            return head[9:12] == b"200"
        return call

    try:
        return await drive([caller(r, w) for r, w in streams], seconds)
    finally:
        for _, writer in streams:
            writer.close()


async def grpc_load(address: str, key: str, inputs: dict[str, Any], connections: int,
                    seconds: float) -> dict[str, Any]:
    import grpc
    from google.protobuf import descriptor_pool, message_factory
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    service = f"jupyter_deploy.nodes.{NODE}.Node"
    with grpc.insecure_channel(address) as sync_channel:  # the reflection client is blocking
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(sync_channel))
        method = pool.FindServiceByName(service).FindMethodByName("Execute")
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    request = request_class(**inputs)
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        execute = channel.unary_unary(f"/{service}/Execute",
                                      request_serializer=request_class.SerializeToString,
                                      response_deserializer=reply_class.FromString)

        async def call() -> bool:
            try:
                await execute(request, metadata=metadata, timeout=30)
                return True
            except grpc.aio.AioRpcError:
                return False

        return await drive([call] * connections, seconds)


async def echo_load(address: str, connections: int, seconds: float) -> dict[str, Any]:
    import grpc
    from grpc_echo import METHOD

    async with grpc.aio.insecure_channel(address) as channel:
        echo = channel.unary_unary(METHOD)
        payload = json.dumps({"input": bench.PREDICT["input"]}).encode()

        async def call() -> bool:
            try:
                await echo(payload, timeout=30)
                return True
            except grpc.aio.AioRpcError:
                return False

        return await drive([call] * connections, seconds)


def echo_server(cpu: int) -> tuple[subprocess.Popen[str], str]:
    """benchmarks/grpc_echo.py on `cpu`; it and its address."""
    server = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable,
                               str(HERE / "grpc_echo.py")], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, f"127.0.0.1:{server.stdout.readline().strip()}"


def serving_processes(info: dict[str, Any]) -> list[psutil.Process]:
    """The service and every process working for it: gateway workers, the instance."""
    pids = [info["process"].pid, *(pid for pid, _ in bench.leftovers(info["folder"]))]
    return [psutil.Process(pid) for pid in dict.fromkeys(pids)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU time the processes used so far (those still running)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(kind: str, info: dict[str, Any], endpoint: str, key: str, connections: int,
            seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """One load run of `kind`; its figures, with `cpu_ms`: serving CPU per good answer."""
    inputs = bench.PREDICT["input"]
    body = json.dumps({"input": inputs}).encode()
    if kind == ECHO:
        server, address = echo_server(args.sut_cpu)
        try:
            return with_cpu([psutil.Process(server.pid)],
                            lambda: asyncio.run(echo_load(address, connections, seconds)))
        finally:
            server.kill()
            server.wait()
    if kind == "REST, wrk":
        def run() -> dict[str, Any]:
            return bench.wrk(endpoint, body, key, connections, seconds, args.load_cpu)
    elif kind == "REST, Python":
        def run() -> dict[str, Any]:
            return asyncio.run(rest_load(endpoint, key, body, connections, seconds))
    else:
        def run() -> dict[str, Any]:
            return asyncio.run(grpc_load(info["gateway_grpc_address"], key, inputs,
                                         connections, seconds))
    return with_cpu(serving_processes(info), run)


def with_cpu(processes: list[psutil.Process], run: Callable[[], dict[str, Any]]
             ) -> dict[str, Any]:
    """`run()`'s figures, plus the processes' CPU milliseconds per answer it counted."""
    before = cpu_seconds(processes)
    figures = run()
    spent = cpu_seconds(processes) - before
    answers = figures.get("requests") or 0
    return {**figures, "cpu_ms": 1e3 * spent / answers if answers else None}


def run(args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any]) -> None:
    from jupyter_deploy.client import DeployClient

    client = DeployClient(info["url"], info["token"])
    bench.pin_in_process(client, {**bench.PREDICT, "name": "predict"})
    created = client.create_node({"name": NODE, "checkpoint": "predict", "min": 1})
    bench.wait_healthy(client, NODE)
    endpoint, key = created["node"]["endpoint"], created["key"]
    rest = bench.check_answer(endpoint, bench.PREDICT, key)
    bench.log(f"REST answer {rest}; gRPC on {info['gateway_grpc_address']}")
    for connections in args.connections:
        for kind in ("REST, wrk", "REST, Python", "gRPC, Python", ECHO):
            if args.warmup > 0:
                measure(kind, info, endpoint, key, connections, args.warmup, args)
            figures = measure(kind, info, endpoint, key, connections, args.duration, args)
            results[f"{kind} c={connections}"] = {"kind": kind, "c": connections, **figures}
            bench.log(f"{kind} c={connections}: {figures['rps']:.0f} req/s, p50 "
                      f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, CPU "
                      f"{figures['cpu_ms'] or 0:.3f} ms per answer")


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [[r["kind"], str(r["c"]), f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}",
             f"{r['p99_ms']:.2f}", "" if r.get("cpu_ms") is None else f"{r['cpu_ms']:.3f}",
             str(r["requests"]),
             str(r.get("errors", r.get("non_2xx", 0) + r.get("socket_errors", 0)))]
            for r in results.values()]
    print(f"\nquickstart cell (node {NODE}, 1 instance), {args.duration:g} s per run after "
          f"{args.warmup:g} s of warm-up; load on CPU {args.load_cpu}, service on CPU "
          f"{args.sut_cpu}")
    print(bench.table(rows, ["protocol, load generator", "c", "req/s", "p50 ms", "p99 ms",
                             "CPU ms/answer", "requests", "errors"]))
    print("CPU ms/answer: what the serving processes (the service, its gateway workers and "
          "the instance; or the echo server) spent per good answer")


def main(argv: list[str] | None = None) -> int:
    args = bench.load_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    return bench.run_load(args, "jd-bench-protocols-", run, report)


if __name__ == "__main__":
    sys.exit(main())
