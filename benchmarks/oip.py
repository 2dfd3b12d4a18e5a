"""The Open Inference Protocol against the native REST API, by the method of bench.py (load on
CPU 0, service on CPU 1).

    .venv/bin/python benchmarks/oip.py [--duration 10] [--quick] [--rows 1,256]

A cell `y = x + 1` with `x: ndarray[float32,(-1,64)]` is pinned and deployed with one
instance, then called at c=1 and c=32 with 1 row and with 256 rows of x:

- native REST: `{"input": {"x": [[...], ...]}}`, nested lists both ways;
- OIP REST JSON: `{"inputs": [{"name": "x", "datatype": "FP32", "shape", "data"}]}`;
- OIP REST binary: Triton's binary tensor data extension, raw float32 both ways;
- OIP gRPC: `inference.GRPCInferenceService/ModelInfer` with raw_input_contents.

One Python asyncio load generator for all (a coroutine per client; keep-alive connections;
gRPC: one channel, HTTP/2 streams), so the figures compare the protocols. Prints req/s, p50
and p99 for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)
from protocols import drive, rest_load  # noqa: E402

NODE = "oipbench"
CELL = {"name": "oipbench", "cell": "y = x + 1", "inputs": "x:ndarray[float32,(-1,64)]",
        "outputs": "y:ndarray[float32,(-1,64)]",
        "setup": "import numpy as np\nx = np.ones((1, 64), dtype='float32')"}
KINDS = ("native REST", "OIP REST JSON", "OIP REST binary", "OIP gRPC")


def bodies(rows: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Each REST form's body and extra headers for `rows` rows of x."""
    import numpy as np

    x = np.arange(rows * 64, dtype="float32").reshape(rows, 64) / 7
    native = json.dumps({"input": {"x": x.tolist()}}).encode()
    oip_json = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 64],
                                       "data": x.ravel().tolist()}]}).encode()
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 64],
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    binary = head + x.tobytes()
    return {"native REST": (native, {}), "OIP REST JSON": (oip_json, {}),
            "OIP REST binary": (binary, {"Inference-Header-Content-Length": str(len(head))})}


async def grpc_load(address: str, key: str, rows: int, connections: int, seconds: float
                    ) -> dict[str, Any]:
    import grpc
    import numpy as np

    from jupyter_deploy.gateway.oip.proto import CLASSES, SERVICE

    x = np.arange(rows * 64, dtype="float32").reshape(rows, 64) / 7
    request = CLASSES["ModelInferRequest"](model_name=NODE, raw_input_contents=[x.tobytes()])
    request.inputs.add(name="x", datatype="FP32", shape=[rows, 64])
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        infer = channel.unary_unary(f"/{SERVICE}/ModelInfer",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=CLASSES["ModelInferResponse"].FromString)

        async def call() -> bool:
            try:
                await infer(request, metadata=metadata, timeout=30)
                return True
            except grpc.aio.AioRpcError:
                return False

        return await drive([call] * connections, seconds)


def measure(kind: str, info: dict[str, Any], key: str, rows: int, connections: int,
            seconds: float) -> dict[str, Any]:
    if kind == "OIP gRPC":
        return asyncio.run(grpc_load(info["gateway_grpc_address"], key, rows, connections,
                                     seconds))
    body, extra = bodies(rows)[kind]
    url = info["gateway_url"] + (f"/v1/nodes/{NODE}:execute" if kind == "native REST"
                                 else f"/v2/models/{NODE}/infer")
    return asyncio.run(rest_load(url, key, body, connections, seconds, extra))


def run(args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any]) -> None:
    from jupyter_deploy.client import DeployClient

    client = DeployClient(info["url"], info["token"])
    bench.pin_in_process(client, CELL)
    created = client.create_node({"name": NODE, "checkpoint": CELL["name"], "min": 1})
    bench.wait_healthy(client, NODE)
    key = created["key"]
    for rows in args.rows:
        for kind in KINDS:  # every form answers before any is timed
            figures = measure(kind, info, key, rows, 1, 0.2)
            if figures["errors"] or not figures["requests"]:
                raise RuntimeError(f"{kind} with {rows} rows does not answer 200")
        for connections in args.connections:
            for kind in KINDS:
                if args.warmup > 0:
                    measure(kind, info, key, rows, connections, args.warmup)
                figures = measure(kind, info, key, rows, connections, args.duration)
                results[f"{kind} rows={rows} c={connections}"] = {
                    "kind": kind, "rows": rows, "c": connections, **figures}
                bench.log(f"{kind}, {rows} rows, c={connections}: {figures['rps']:.0f} req/s, "
                          f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms")


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [[r["kind"], str(r["rows"]), str(r["c"]), f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}",
             f"{r['p99_ms']:.2f}", str(r["requests"]), str(r["errors"])]
            for r in results.values()]
    print(f"\ny = x + 1, x: ndarray[float32,(-1,64)] (node {NODE}, 1 instance), "
          f"{args.duration:g} s per run after {args.warmup:g} s of warm-up; load on CPU "
          f"{args.load_cpu}, service on CPU {args.sut_cpu}")
    print(bench.table(rows, ["protocol", "rows", "c", "req/s", "p50 ms", "p99 ms",
                             "requests", "errors"]))


def main(argv: list[str] | None = None) -> int:
    parser = bench.load_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1,256", help="rows of x per request (1,256)")
    args = parser.parse_args(argv)
    args.rows = [int(r) for r in args.rows.split(",")]
    return bench.run_load(args, "jd-bench-oip-", run, report)


if __name__ == "__main__":
    sys.exit(main())
