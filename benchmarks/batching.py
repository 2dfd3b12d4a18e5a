"""Adaptive batching (issue 18), by the method of bench.py (load on CPU 0, service on CPU 1).

    .venv/bin/python benchmarks/batching.py [--duration 10] [--quick] [--peers DIR]

The model: `y = softmax(x @ W)` row by row, W a 256x256 float32 matrix, x
`ndarray[float32,(-1,256)]`, one row per request. Pinned once with `--batch` and deployed
twice with one instance each, BLAS on one thread: `batched...` (batch max_size 32,
max_wait_ms 5) and `unbatched...` (no batch setting: one run per request). Each is called
through the gateway at c=1 and c=32 by the asyncio load generator of protocols.py (a
keep-alive connection per client). `--cases` lists the runs as `W:ARRAYS`: the arrays as JSON
lists both ways (`json`) or in the compact base64 form (`base64`, with
`x-array-encoding: base64`); the default adds `256:base64` (what JSON costs) and
`1024:base64` (a 4 MB W: a cell whose run costs more than the hops around it). The first
case's instances are also called directly, as the gateway calls them (for the batching one,
with its `x-batch` field), to show the instance without the gateway's share of the CPU.

With `--peers DIR`, the same model is served in the same run, pinned to the same CPU, by
BentoML 1.4 with adaptive batching (`@bentoml.api(batchable=True, max_batch_size=32)`, one
worker) and by Ray Serve with `@serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)`
(one replica, `ray.init(num_cpus=1)`), from the venvs DIR/bento and DIR/ray (made with pip
when missing). Prints req/s, p50 and p99 of each, the mean batch size and cell run of the
batching instance, the serving processes' CPU time per answer, the issue's targets, and the
most batching could give each case (Amdahl's law: only the cell's runs are shared; the rest
of an answer's CPU, its HTTP and JSON in the gateway and the instance, is paid per caller).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the helpers of the main benchmark)
from protocols import rest_load, serving_processes, with_cpu  # noqa: E402

MAX_SIZE, MAX_WAIT_MS = 32, 5
CELL = """z = x @ W
z = z - z.max(axis=1, keepdims=True)
e = np.exp(z)
y = e / e.sum(axis=1, keepdims=True)
"""
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WEIGHTS = "np.random.default_rng(0).standard_normal(({n}, {n})).astype('float32') / 16"
PEERS = {  # the venvs of the peers, and what each needs
    "bento": ["bentoml==1.4.*", "numpy"],
    "ray": ["ray[serve]", "numpy"],
}
BENTO_APP = f"""import bentoml
import numpy as np

W = {WEIGHTS.format(n=256)}


@bentoml.service(workers=1)
class Softmax:
    @bentoml.api(batchable=True, batch_dim=0, max_batch_size={MAX_SIZE}, max_latency_ms=10000)
    def predict(self, x: np.ndarray) -> np.ndarray:
        x = x.astype("float32")
{''.join('        ' + line + chr(10) for line in CELL.splitlines())}        return y
"""
RAY_APP = f"""import signal, sys, time
import numpy as np
import ray
from ray import serve
from starlette.requests import Request

W = {WEIGHTS.format(n=256)}


@serve.deployment(max_ongoing_requests=256)
class Softmax:
    @serve.batch(max_batch_size={MAX_SIZE}, batch_wait_timeout_s={MAX_WAIT_MS / 1000})
    async def run(self, rows):
        x = np.asarray(rows, dtype="float32")
{''.join('        ' + line + chr(10) for line in CELL.splitlines())}        return y.tolist()

    async def __call__(self, request: Request):
        body = await request.json()
        return {{"y": [await self.run(body["x"][0])]}}


ray.init(num_cpus=1, include_dashboard=False, _temp_dir=sys.argv[2])
serve.start(http_options={{"host": "127.0.0.1", "port": int(sys.argv[1])}})
serve.run(Softmax.bind(), route_prefix="/")


def stop(*_):
    serve.shutdown()
    ray.shutdown()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def row_body(n: int, encoding: str = "json", wrapped: bool = True) -> bytes:
    """One request: a row of n floats, as JSON lists or in the compact base64 form (as
    `{"input": {"x": ...}}`, or `{"x": ...}` for the peers)."""
    import base64

    import numpy as np

    row = np.round(np.random.default_rng(1).standard_normal((1, n)), 4).astype("float32")
    x: Any = row.tolist() if encoding == "json" else {
        "dtype": "float32", "shape": [1, n], "data": base64.b64encode(row.tobytes()).decode()}
    return json.dumps({"input": {"x": x}} if wrapped else {"x": x}).encode()


def pin(client: Any, n: int) -> str:
    """Pin the cell with --batch, as `%%deploy pin` does (its row-wise check included)."""
    import base64

    import numpy as np

    from jupyter_deploy.kernel.batch_check import check_batchable
    from jupyter_deploy.kernel.capture import capture
    from jupyter_deploy.types import parse_fields

    name = f"softmax{n}"
    namespace: dict[str, Any] = {"__name__": "__main__", "np": np}
    namespace["W"] = eval(WEIGHTS.format(n=n), namespace)  # noqa: S307 - our own text
    example = {"x": np.ones((1, n), dtype="float32")}
    namespace.update(example)
    exec(CELL, namespace)
    inputs = parse_fields(f"x:ndarray[float32,(-1,{n})]", "--inputs")
    outputs = parse_fields(f"y:ndarray[float32,(-1,{n})]", "--outputs")
    meta, data = capture(name, CELL, namespace, inputs, outputs, example)
    check_batchable(CELL, namespace, meta["inputs"], meta["outputs"], example)
    client.add_checkpoint({**meta, "batch": True, "data": base64.b64encode(data).decode()})
    return name


def instance_figures(client: Any, node: str) -> dict[str, float]:
    """An instance's counters: its batched runs and their callers, and the seconds and count
    of its execution histogram (one entry per caller, the run it was in)."""
    instance = client.node(node)["instances"][0]
    url = f"http://{instance['host']}:{instance['port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    found = {"runs": 0.0, "callers": 0.0, "ran_s": 0.0, "ran": 0.0}
    for line in text.splitlines():
        for key, prefix in (("runs", "instance_batch_size_count "),
                            ("callers", "instance_batch_size_sum "),
                            ("ran_s", "instance_execution_seconds_sum "),
                            ("ran", "instance_execution_seconds_count ")):
            if line.startswith(prefix):
                found[key] = float(line.split()[1])
    return found


def load(url: str, key: str, body: bytes, c: int, args: argparse.Namespace,
         serving: list[psutil.Process], extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A warm-up, then the measured run, with the serving processes' CPU per answer."""
    if args.warmup > 0:
        asyncio.run(rest_load(url, key, body, c, args.warmup, extra))
    return with_cpu(serving, lambda: asyncio.run(rest_load(url, key, body, c, args.duration,
                                                           extra)))


def run(args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any]) -> None:
    from jupyter_deploy.client import DeployClient

    client = DeployClient(info["url"], info["token"])
    pinned: dict[int, str] = {}
    for n, encoding in args.cases:
        checkpoint = pinned.get(n) or pinned.setdefault(n, pin(client, n))
        for batch in (None, {"max_size": MAX_SIZE, "max_wait_ms": MAX_WAIT_MS}):
            label = "batched" if batch else "unbatched"
            node = f"{label}{n}{encoding}"
            created = client.create_node({"name": node, "checkpoint": checkpoint, "min": 1,
                                          "batch": batch, "env": ONE_THREAD})
            bench.wait_healthy(client, node)
            url = info["gateway_url"] + f"/v1/nodes/{node}:execute"
            measure(client, info, url, {}, node, created["key"], f"{label} {n} {encoding}", n,
                    encoding, args, results)
            if args.direct and (n, encoding) == args.cases[0]:
                instance = client.node(node)["instances"][0]
                url = f"http://{instance['host']}:{instance['port']}/execute"
                field = {"x-batch": f"{MAX_SIZE} {MAX_WAIT_MS}"} if batch else {}
                measure(client, info, url, field, node, created["key"],
                        f"{label} {n} {encoding} direct", n, encoding, args, results)
            client.delete_node(node)
    if args.peers:
        for peer in ("bento", "ray"):
            try:
                serve_peer(peer, args, info["folder"], results)
            except Exception as exc:  # noqa: BLE001 - one peer that fails is reported
                bench.log(f"{peer}: FAILED: {type(exc).__name__}: {exc}")
                results[f"{peer} failed"] = {"system": peer, "error": str(exc)}


def measure(client: Any, info: dict[str, Any], url: str, extra: dict[str, str], node: str,
            key: str, case: str, n: int, encoding: str, args: argparse.Namespace,
            results: dict[str, Any]) -> None:
    """Load one node at `url` at each concurrency; its figures, with its instance's batches."""
    body = row_body(n, encoding)
    extra = {**extra, **({"x-array-encoding": "base64"} if encoding == "base64" else {})}
    status, answer = bench.post(url, body, key)
    if status != 200:
        raise RuntimeError(f"{node} answered {status}: {answer[:300]!r}")
    for c in args.connections:
        before = instance_figures(client, node)
        figures = load(url, key, body, c, args, serving_processes(info), extra)
        after = instance_figures(client, node)
        change = {k: after[k] - before[k] for k in after}
        figures.update(batch_mean=change["callers"] / change["runs"] if change["runs"] else None,
                       run_ms=1e3 * change["ran_s"] / change["ran"] if change["ran"] else None)
        system = f"jupyter_deploy, {case.split()[0]}" + (", direct" if "direct" in case else "")
        results[f"{case} c={c}"] = {"system": system, "n": n,
                                    "encoding": encoding, "c": c, **figures}
        bench.log(f"{node} c={c}: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
                  f"p99 {figures['p99_ms']:.2f} ms, batch {figures['batch_mean']}, "
                  f"run {figures['run_ms']} ms, CPU {figures['cpu_ms']} ms per answer")


def peer_python(peer: str, root: Path) -> str:
    """The peer's venv interpreter, made with pip when it is missing."""
    venv = root / peer
    python = venv / "bin" / "python"
    if not python.exists():
        bench.log(f"making the {peer} venv in {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[peer]], check=True)
    return str(python)


def serve_peer(peer: str, args: argparse.Namespace, folder: Path,
               results: dict[str, Any]) -> None:
    """Start the peer pinned to the service's CPU, load it at each concurrency, stop it."""
    python = peer_python(peer, Path(args.peers))
    port = bench.free_port()
    work = folder / peer
    work.mkdir()
    if peer == "bento":
        (work / "service.py").write_text(BENTO_APP)
        command = [str(Path(python).parent / "bentoml"), "serve", "service:Softmax",
                   "--host", "127.0.0.1", "--port", str(port)]
        url, label = f"http://127.0.0.1:{port}/predict", "BentoML 1.4, adaptive batching"
    else:
        (work / "app.py").write_text(RAY_APP)
        command = [python, "app.py", str(port), str(work / "ray")]
        url, label = f"http://127.0.0.1:{port}/", "Ray Serve, @serve.batch"
    env = {**{k: v for k, v in bench.clean_env(folder).items() if k != "PYTHONPATH"},
           "RAY_USAGE_STATS_ENABLED": "0",
           "BENTOML_DO_NOT_TRACK": "True", **ONE_THREAD}
    log_file = open(work / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(["taskset", "-c", args.sut_cpu, *command], cwd=work, env=env,
                               stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)
    body = row_body(256, wrapped=False)
    try:
        started = time.monotonic()
        while bench.post(url, body, timeout_s=5)[0] != 200:
            if process.poll() is not None or time.monotonic() - started > 180:
                tail = (work / "serve.log").read_bytes()[-2000:].decode(errors="replace")
                raise RuntimeError(f"{label} did not answer 200: {tail}")
            time.sleep(0.5)
        bench.log(f"{label}: answering after {time.monotonic() - started:.1f} s")
        serving = [psutil.Process(process.pid),
                   *psutil.Process(process.pid).children(recursive=True)]
        for c in args.connections:
            figures = load(url, "", body, c, args, serving)
            results[f"{peer} c={c}"] = {"system": label, "n": 256, "encoding": "json", "c": c,
                                        **figures}
            bench.log(f"{label} c={c}: {figures['rps']:.0f} req/s, p50 "
                      f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms")
    finally:
        _stop_group(process)
        log_file.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the peer's process group (it was started in a session of its own), then
    SIGKILL to what is left of it after 20 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = []
    for r in results.values():
        if "error" in r:
            rows.append([r["system"], "", "", "", "failed", "", "", "", "", r["error"][:60]])
            continue
        rows.append([r["system"], str(r["n"]), r["encoding"], str(r["c"]), f"{r['rps']:.0f}",
                     f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                     "" if r.get("batch_mean") is None else f"{r['batch_mean']:.1f}",
                     "" if r.get("run_ms") is None else f"{r['run_ms']:.3f}",
                     "" if r.get("cpu_ms") is None else f"{r['cpu_ms']:.3f}", str(r["errors"])])
    print(f"\ny = softmax(x @ W) row by row, one row per request, one instance; "
          f"{args.duration:g} s per run after {args.warmup:g} s of warm-up; load on CPU "
          f"{args.load_cpu}, systems on CPU {args.sut_cpu}")
    print(bench.table(rows, ["system", "W", "arrays", "c", "req/s", "p50 ms", "p99 ms", "batch mean",
                             "cell run ms", "CPU ms/answer", "errors"]))
    print("cell run ms: the mean run of the cell a caller's rows were in (instance metrics); "
          "CPU ms/answer: what the serving processes (the service, its gateway workers and "
          "the instance) spent per answer")
    for n, encoding in args.cases:
        _targets(results, f"{n} {encoding}")


def _targets(results: dict[str, Any], case: str) -> None:
    """The issue's targets for one case (`256 json`), from this run's figures."""
    plain, batched = (results.get(f"{label} {case} c=32") for label in ("unbatched", "batched"))
    one_plain, one_batched = (results.get(f"{label} {case} c=1")
                              for label in ("unbatched", "batched"))
    if plain and batched:
        ratio = batched["rps"] / plain["rps"]
        print(f"W {case}: c=32 batched/unbatched req/s = {ratio:.2f} "
              f"({bench.verdict(ratio, 4.0, True)}: target >= 4)")
        if plain.get("cpu_ms") and plain.get("run_ms") and plain["cpu_ms"] > plain["run_ms"]:
            # Amdahl: batching saves at most the cell's runs; the rest of an answer remains
            print(f"W {case}: unbatched, the cell's run is {plain['run_ms']:.3f} ms of the "
                  f"{plain['cpu_ms']:.3f} ms of CPU an answer costs: batching can give at "
                  f"most {plain['cpu_ms'] / (plain['cpu_ms'] - plain['run_ms']):.2f}x")
        bound = MAX_WAIT_MS + 2 * (batched.get("run_ms") or 0.0)
        print(f"W {case}: c=32 batched p99 {batched['p99_ms']:.2f} ms; max_wait_ms + 2 runs = "
              f"{bound:.2f} ms ({bench.verdict(batched['p99_ms'], bound, False)})")
    if one_plain and one_batched:
        gap = one_batched["p50_ms"] - one_plain["p50_ms"]
        print(f"W {case}: c=1 p50 batched - unbatched = {gap:+.3f} ms "
              f"({bench.verdict(gap, 0.1, False)}: target <= +0.1 ms)")


def main(argv: list[str] | None = None) -> int:
    parser = bench.load_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="256:json,256:base64,1024:base64",
                        help="W sizes and array encodings (256:json,256:base64,1024:base64)")
    parser.add_argument("--no-direct", dest="direct", action="store_false",
                        help="do not also call the first case's instances directly")
    parser.add_argument("--peers", help="folder of the peers' venvs (bento/, ray/): serve "
                        "the model with BentoML and Ray Serve too")
    args = parser.parse_args(argv)
    args.cases = [(int(n), encoding) for n, _, encoding in
                  (case.partition(":") for case in args.cases.split(","))]
    return bench.run_load(args, "jd-bench-batching-", run, report)


if __name__ == "__main__":
    sys.exit(main())
