"""Measure jupyter_deploy by the method in benchmarks/README.md and print the figures next to the targets.

    .venv/bin/python benchmarks/bench.py              # full run (10 s per load test, ~3 min)
    .venv/bin/python benchmarks/bench.py --quick      # smoke run (2 s per load test)

What it does:
  1. starts `jupyter deploy serve` standalone, pinned to the system-under-test CPU (instances
     inherit the affinity), with its own runtime dir and state dir in a temporary folder;
  2. for each cell (`total = a + b`, and the quickstart's `prediction = predict_one(x1, x2)`):
     pins it (in a real IPython kernel through `%%deploy pin`, or in-process with
     `capture()` with `--pin inprocess`), creates a node with min 1, and times pin -> Healthy;
     then times cold starts: POST /nodes from the pinned checkpoint -> first 200 via the gateway;
  3. runs wrk (pinned to the load CPU) through the gateway and directly to the instance, at
     c=1 and c=32, after a warm-up at the same concurrency;
  4. sends a 17 MB request to the gateway: status and milliseconds to the answer;
  5. stops everything it started and checks that no process is left.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "post.lua"
sys.path.insert(0, str(ROOT))

from jupyter_deploy.gateway.fleet import stop_workers  # noqa: E402
from jupyter_deploy.runtimes.lease import ask_everything  # noqa: E402

SUM = {
    "name": "sum",
    "setup": "a, b = 1.5, 2.25\n",
    "cell": "total = a + b\n",
    "inputs": "a:float,b:float",
    "outputs": "total",
    "input": {"a": 1.5, "b": 2.25},
    "expect": {"total": 3.75},
}
PREDICT = {  # examples/quickstart.ipynb
    "name": "predict",
    "setup": (
        "import numpy as np\n\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.uniform(0, 10, size=(200, 2))\n"
        "y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 5.0 + rng.normal(0, 0.5, size=200)\n"
        "weights, *_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)\n\n\n"
        "def predict_one(x1, x2):\n"
        "    return float(weights @ [x1, x2, 1.0])\n\n\n"
        "x1, x2 = 4.0, 1.5\n"
    ),
    "cell": "prediction = predict_one(x1, x2)\n",
    "inputs": "x1:float,x2:float",
    "outputs": "prediction",
    "input": {"x1": 4.0, "x2": 1.5},
    "expect": None,  # a float near 3*4 - 2*1.5 + 5 = 14
}
CELLS = {"sum": SUM, "predict": PREDICT}

BIG_BYTES = 17 * 1024 * 1024
POLL_S = 0.01


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# the service --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_DEPLOY_URL", "JUPYTER_DEPLOY_TOKEN")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_service(tmp: Path, python: str, sut_cpu: str | None, log_file,
                  extra: list[str] | None = None) -> tuple[subprocess.Popen, dict]:
    command = [python, "-m", "jupyter_deploy.cli", "serve", "--gateway-port=0",
               "--gateway-grpc-port=0",
               f"--port={free_port()}", f"--state-dir={tmp / 'state'}", *(extra or [])]
    if sut_cpu is not None:
        command = ["taskset", "-c", sut_cpu, *command]
    process = subprocess.Popen(command, env=clean_env(tmp), cwd=tmp, stdin=subprocess.DEVNULL,
                               stdout=log_file, stderr=subprocess.STDOUT)
    announcement = tmp / "runtime" / f"jupyter_deploy-{process.pid}.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            return process, {**json.loads(announcement.read_text()),
                             "state_dir": str(tmp / "state")}
        except (OSError, ValueError):
            time.sleep(0.05)
    raise RuntimeError("the service did not announce itself within 60 s")


def stop_service(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            log(f"service {process.pid} ignored SIGTERM for 30 s: SIGKILL")
            process.kill()
            process.wait()


def leftovers(tmp: Path) -> list[tuple[int, str]]:
    """Processes whose command line names our temporary folder (instances, kernel)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if str(tmp) in args and int(pid) != os.getpid() and not args.startswith("ps "):
            found.append((int(pid), args))
    return found


def with_service(prefix: str, sut_cpu: str | None, body, python: str = sys.executable,
                 keep: bool = False, extra: list[str] | None = None) -> bool:
    """Start a service in a temporary folder, call `body(info)` (`info["folder"]` is that
    folder), stop it and every instance. The folder is removed unless `keep` or it failed.

    True when all went well (nothing raised, no process was left behind).
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    (tmp / "runtime").mkdir()
    service = None
    failed = False
    with open(tmp / "service.log", "wb") as service_log:
        try:
            log(f"starting the service (CPU {sut_cpu}), folder {tmp}")
            service, info = start_service(tmp, python, sut_cpu, service_log, extra)
            log(f"service pid {service.pid}: control {info['url']}, "
                f"gateway {info['gateway_url']}")
            context = {**info, "folder": tmp, "process": service}
            body(context)
            service = context["process"]  # a body may have restarted it
        except Exception as exc:  # noqa: BLE001 - report, clean up, exit non-zero
            failed = True
            log(f"FAILED: {type(exc).__name__}: {exc}")
            service_log.flush()
            tail = (tmp / "service.log").read_bytes()[-4000:].decode(errors="replace")
            print(f"--- service log (tail) ---\n{tail}", file=sys.stderr)
        finally:
            if service is not None:
                log(f"stopping the service and its instances (SIGTERM to {service.pid})")
                ask_everything(tmp / "state")  # `jupyter deploy stop --everything`
                stop_service(service)
            stopped = stop_workers(tmp / "state")  # any the service could not stop
            if stopped:
                log(f"stopped the gateway workers {stopped}")
    left = leftovers(tmp)
    for pid, command in left:
        log(f"left over, terminating: {pid} {command}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if left:
        failed = True
        time.sleep(2)
    else:
        log("no process left (ps)")
    if keep or failed:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return not failed


# pinning ------------------------------------------------------------------------------------

class Kernel:
    """A real IPython kernel that sees the service, to pin with `%%deploy pin`."""

    def __init__(self, tmp: Path, info: dict) -> None:
        from jupyter_client.manager import KernelManager

        env = clean_env(tmp)
        env["JUPYTER_DEPLOY_URL"], env["JUPYTER_DEPLOY_TOKEN"] = info["url"], info["token"]
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(tmp), stderr=subprocess.DEVNULL)  # errors come on iopub
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout_s: float = 120.0) -> None:
        outputs: list[str] = []

        def hook(msg: dict) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                outputs.append(content["text"])
            elif msg["msg_type"] == "error":
                outputs.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=timeout_s, output_hook=hook,
                                                store_history=False)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel failed on:\n{code}\n{''.join(outputs)}")

    def stop(self) -> None:
        try:
            self.client.stop_channels()
        finally:
            self.manager.shutdown_kernel(now=False)


def pin_in_kernel(kernel: Kernel, cell: dict) -> None:
    kernel.run(f"%%deploy pin {cell['name']} --inputs {cell['inputs']} --outputs "
               f"{cell['outputs']}\n{cell['cell']}")


def pin_in_process(client, cell: dict) -> None:
    """What `%%deploy pin` does, without a kernel: run the cell in a namespace and capture it."""
    from jupyter_deploy.kernel.capture import capture
    from jupyter_deploy.types import parse_fields

    inputs = parse_fields(cell["inputs"], "--inputs")
    outputs = parse_fields(cell["outputs"], "--outputs")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(cell["setup"], namespace)
    example = {f["name"]: namespace[f["name"]] for f in inputs}
    exec(cell["cell"], namespace)
    meta, data = capture(cell["name"], cell["cell"], namespace, inputs, outputs, example)
    meta["data"] = base64.b64encode(data).decode()
    client.add_checkpoint(meta)


# HTTP helpers -------------------------------------------------------------------------------

def post(url: str, body: bytes, key: str | None = None, timeout_s: float = 10.0
         ) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (TimeoutError, urllib.error.URLError, ConnectionError):
        return 0, b""


def wait_healthy(client, name: str, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        node = client.node(name)
        if node["status"] == "Healthy":
            return node
        if node["status"] == "Unhealthy" or time.monotonic() > deadline:
            raise RuntimeError(f"node {name} is {node['status']}: {json.dumps(node)[:2000]}")
        time.sleep(POLL_S)


def pin_to_healthy(client, pin, cell: dict) -> dict[str, Any]:
    """Seconds from the start of the pin to the node (min 1) being Healthy."""
    started = time.perf_counter()
    pin(cell)
    pinned = time.perf_counter()
    created = client.create_node({"name": cell["name"], "checkpoint": cell["name"], "min": 1})
    node = wait_healthy(client, cell["name"])
    healthy = time.perf_counter()
    return {"node": node, "key": created["key"], "pin_s": pinned - started,
            "pin_to_healthy_s": healthy - started, "create_to_healthy_s": healthy - pinned}


def cold_start(client, cell: dict, name: str) -> float:
    """Seconds from POST /nodes (from the pinned checkpoint) to the first 200 via the gateway."""
    body = json.dumps({"input": cell["input"]}).encode()
    started = time.perf_counter()
    created = client.create_node({"name": name, "checkpoint": cell["name"], "min": 1})
    endpoint, key = created["node"]["endpoint"], created["key"]
    deadline = started + 120
    try:
        while True:
            status, answer = post(endpoint, body, key)
            if status == 200:
                return time.perf_counter() - started
            if status not in (0, 502, 503) or time.perf_counter() > deadline:
                raise RuntimeError(f"cold start of {name}: {status} {answer[:500]!r}")
            time.sleep(POLL_S)
    finally:
        client.delete_node(name)


def check_answer(url: str, cell: dict, key: str | None) -> dict:
    status, answer = post(url, json.dumps({"input": cell["input"]}).encode(), key)
    if status != 200:
        raise RuntimeError(f"POST {url} -> {status} {answer[:500]!r}")
    output = json.loads(answer)["output"]
    if cell["expect"] is not None and output != cell["expect"]:
        raise RuntimeError(f"POST {url} -> {output}, expected {cell['expect']}")
    return output


# wrk ----------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    for line in text.splitlines():
        line = line.strip()
        if m := re.match(r"Requests/sec:\s+([\d.]+)", line):
            result["rps"] = float(m.group(1))
        elif m := re.match(r"(50|75|90|99)%\s+(\S+)", line):
            result[f"p{m.group(1)}_ms"] = _ms(m.group(2))
        elif m := re.match(r"(\d+) requests in", line):
            result["requests"] = int(m.group(1))
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
            result["non_2xx"] = int(m.group(1))
        elif line.startswith("Socket errors:"):
            result["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", line))
    if "rps" not in result or "p99_ms" not in result:
        raise RuntimeError(f"could not read wrk's output:\n{text}")
    return result


def wrk(url: str, body: bytes, key: str | None, connections: int, seconds: float,
        load_cpu: str | None) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", str(LUA), url]
    if load_cpu is not None:
        command = ["taskset", "-c", load_cpu, *command]
    env = {**os.environ, "WRK_BODY": body.decode(), "WRK_KEY": key or ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse_wrk(done.stdout)


def load_test(url: str, cell: dict, key: str | None, connections: int, args) -> dict[str, Any]:
    body = json.dumps({"input": cell["input"]}).encode()
    if args.warmup > 0:
        wrk(url, body, key, connections, args.warmup, args.load_cpu)
    return wrk(url, body, key, connections, args.duration, args.load_cpu)


def bare_tornado(args) -> dict[str, dict[str, Any]]:
    """wrk against the bare Tornado app (benchmarks/bare_tornado.py) on the service's CPU, at
    each concurrency: the baseline of PERFORMANCE.md's ratios, measured in this run."""
    port = free_port()
    command = [args.python, str(HERE / "bare_tornado.py"), str(port)]
    if args.sut_cpu is not None:
        command = ["taskset", "-c", args.sut_cpu, *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare Tornado app did not start")
        url = f"http://127.0.0.1:{port}/"
        check_answer(url, SUM, None)
        loads = {}
        for c in args.connections:
            loads[str(c)] = w = load_test(url, SUM, None, c, args)
            log(f"bare Tornado c={c}: {w['rps']:.0f} req/s, p50 {w['p50_ms']:.2f} ms, "
                f"p99 {w['p99_ms']:.2f} ms")
        return loads
    finally:
        process.terminate()
        process.wait(10)


# the 17 MB request --------------------------------------------------------------------------

def big_request(endpoint: str, key: str, size: int = BIG_BYTES) -> dict[str, Any]:
    """Send a `size`-byte JSON body with its Content-Length; time the answer.

    Also reports how many body bytes the client had handed to its socket when the answer came:
    an upper bound of what the gateway can have read.
    """
    url = urllib.parse.urlsplit(endpoint)
    pad = size - len('{"input": {"a": 1.0, "b": 2.0}, "pad": ""}')
    body = b'{"input": {"a": 1.0, "b": 2.0}, "pad": "' + b"x" * pad + b'"}'
    assert len(body) == size
    head = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    sent = [0]
    view = memoryview(body)

    def sender() -> None:
        try:
            sock.sendall(head)
            while sent[0] < size:
                sent[0] += sock.send(view[sent[0]:sent[0] + 65536])
        except OSError:
            pass

    started = time.perf_counter()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    answer = b""
    status = 0
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = answer[:head_end].decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                               if k.strip().lower() == "content-length"), None)
                if length is not None and len(answer) >= head_end + 4 + length:
                    break
    except OSError:
        pass
    elapsed = time.perf_counter() - started
    sent_at_answer = sent[0]
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join(10)
    return {"status": status, "ms": elapsed * 1e3, "body_bytes_sent_at_answer": sent_at_answer,
            "answer": answer.split(b"\r\n\r\n", 1)[-1][:200].decode(errors="replace")}


# report -------------------------------------------------------------------------------------

def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "yes" if ok else "NO"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths, strict=False)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def report(results: dict[str, Any], args) -> None:
    print()
    print(f"jupyter_deploy benchmark: wrk -t1 -cN -d{args.duration:g}s --latency (warm-up "
          f"{args.warmup:g} s), wrk on CPU {args.load_cpu}, service + instances on CPU "
          f"{args.sut_cpu}, pin: {args.pin}")
    rows = []
    for name, r in results["cells"].items():
        rows.append([name, f"{r['pin_s']:.2f}", f"{r['pin_to_healthy_s']:.2f}",
                     f"{r['create_to_healthy_s']:.2f}",
                     " ".join(f"{s:.2f}" for s in r["cold_starts_s"]),
                     f"{statistics.median(r['cold_starts_s']):.2f}"])
    print()
    print(table(rows, ["cell", "pin s", "pin->Healthy s", "create->Healthy s",
                       "cold starts s", "cold median s"]))
    rows = []
    for name, r in results["cells"].items():
        for target in ("gateway", "direct"):
            for c in args.connections:
                w = r["load"][target][str(c)]
                rows.append([name, target, c, f"{w['rps']:.0f}", f"{w['p50_ms']:.2f}",
                             f"{w['p99_ms']:.2f}", w["requests"], w["non_2xx"],
                             w["socket_errors"]])
    for c, w in results.get("tornado", {}).items():
        rows.append(["sum", "bare Tornado", c, f"{w['rps']:.0f}", f"{w['p50_ms']:.2f}",
                     f"{w['p99_ms']:.2f}", w["requests"], w["non_2xx"], w["socket_errors"]])
    print()
    print(table(rows, ["cell", "to", "c", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx",
                       "sock err"]))
    tornado = results.get("tornado", {})
    gateway = results["cells"].get("sum", {}).get("load", {}).get("gateway", {})
    ratios = [[c, f"{gateway[c]['rps'] / t['rps']:.2f}", f"{gateway[c]['p50_ms'] / t['p50_ms']:.2f}",
               f"{gateway[c]['p99_ms'] / t['p99_ms']:.2f}"]
              for c, t in tornado.items() if c in gateway]
    if ratios:
        print()
        print("sum through the gateway vs the bare Tornado app (same run):")
        print(table(ratios, ["c", "rps ratio", "p50 ratio", "p99 ratio"]))
    big = results.get("big")
    if big:
        print()
        print(f"17 MB request ({BIG_BYTES} bytes, Content-Length) to the gateway: "
              f"{big['status']} in {big['ms']:.1f} ms; the client had handed "
              f"{big['body_bytes_sent_at_answer'] / 2**20:.1f} MiB of the body to its socket "
              f"when the answer came; answer {big['answer']}")

    s = results["cells"].get("sum")
    if s is None:
        return
    c1 = s["load"]["gateway"].get("1")
    c32 = s["load"]["gateway"].get("32")
    cold = statistics.median(s["cold_starts_s"])
    figures = [
        ["c=32 rps, gateway -> sum instance", c32 and f"{c32['rps']:.0f}", ">= 1,500",
         verdict(c32 and c32["rps"], 1500, True)],
        ["c=1 p50 ms, gateway", c1 and f"{c1['p50_ms']:.2f}", "<= 0.8",
         verdict(c1 and c1["p50_ms"], 0.8, False)],
        ["c=32 p99 ms, gateway", c32 and f"{c32['p99_ms']:.1f}", "<= 40",
         verdict(c32 and c32["p99_ms"], 40, False)],
        ["cold start s (create node -> first 200)", f"{cold:.2f}", "<= 1.0",
         verdict(cold, 1.0, False)],
    ]
    if big:
        figures.append(["17 MB request", f"{big['status']} in {big['ms']:.1f} ms",
                        "413 within 50 ms",
                        "yes" if big["status"] == 413 and big["ms"] <= 50 else "NO"])
    print()
    print(table([["-" if c is None else str(c) for c in row] for row in figures],
                ["figure (targets: benchmarks/README.md)", "measured", "target", "met"]))
    if c1 and c32:
        big_text = (("refused (413)" if big["status"] == 413 else f"{big['status']}")
                    if big else "n/a")
        print()
        print("Row for the peers table of benchmarks/README.md:")
        print("| system | cold start s | c=1 rps | c=1 p50 ms | c=32 rps | c=32 p99 ms | 17 MB body |")
        print(f"| jupyter_deploy (gateway -> 1 process instance) | {cold:.2f} | {c1['rps']:.0f} | "
              f"{c1['p50_ms']:.2f} | {c32['rps']:.0f} | {c32['p99_ms']:.1f} | {big_text} |")


# what the other benchmarks share --------------------------------------------------------------

def load_parser(description: str) -> argparse.ArgumentParser:
    """The options of the load tests that protocols.py and oip.py run like this one."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up (3)")
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 s warm-up")
    parser.add_argument("--connections", default="1,32", help="concurrencies (1,32)")
    parser.add_argument("--load-cpu", default="0", help="CPU of the load generators")
    parser.add_argument("--sut-cpu", default="1", help="CPU of the service and its instances")
    parser.add_argument("--json", help="also write the results to this file")
    return parser


def run_load(args: argparse.Namespace, prefix: str, run, report) -> int:
    """Start a service, `run(args, info, results)`, `report(results, args)`; the exit code."""
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    args.connections = [int(c) for c in args.connections.split(",")]
    os.sched_setaffinity(0, {int(args.load_cpu)})
    results: dict[str, Any] = {}
    ok = with_service(prefix, args.sut_cpu, lambda info: run(args, info, results))
    if results:
        report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


# main ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up (3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s runs, 1 s warm-up, one cold start per cell")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per cell (3)")
    parser.add_argument("--cells", default="sum,predict", help="sum,predict")
    parser.add_argument("--connections", default="1,32", help="wrk concurrencies (1,32)")
    parser.add_argument("--pin", choices=("kernel", "inprocess"), default="kernel",
                        help="pin with %%%%deploy pin in an IPython kernel (default), or with "
                        "capture() in this process")
    parser.add_argument("--load-cpu", default="0", help="CPU for wrk and this script ('' = any)")
    parser.add_argument("--sut-cpu", default="1", help="CPU for the service and its instances")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the service")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-tornado", action="store_true",
                        help="skip the bare Tornado app's load tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.cold_runs = 2.0, 1.0, 1
    args.connections = [int(c) for c in args.connections.split(",")]
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    for name in args.cells:
        if name not in CELLS:
            parser.error(f"unknown cell {name!r} (known: {', '.join(CELLS)})")
    args.load_cpu = args.load_cpu or None
    args.sut_cpu = args.sut_cpu or None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.load_cpu is not None:
        os.sched_setaffinity(0, {int(c) for c in args.load_cpu.split(",")})
    sys.path.insert(0, str(ROOT))
    from jupyter_deploy.client import DeployClient

    results: dict[str, Any] = {"cells": {}, "args": {k: v for k, v in vars(args).items()}}

    def work(info: dict[str, Any]) -> None:
        kernel = None
        try:
            client = DeployClient(info["url"], info["token"])
            if args.pin == "kernel":
                log("starting an IPython kernel to pin from")
                kernel = Kernel(info["folder"], info)
                kernel.run("%load_ext jupyter_deploy")
                pin = lambda cell: pin_in_kernel(kernel, cell)  # noqa: E731
            else:
                pin = lambda cell: pin_in_process(client, cell)  # noqa: E731

            for name in args.cells:
                cell = CELLS[name]
                if kernel is not None:
                    kernel.run(cell["setup"])
                r = pin_to_healthy(client, pin, cell)
                log(f"{name}: pinned in {r['pin_s']:.2f} s, Healthy "
                    f"{r['pin_to_healthy_s']:.2f} s after the pin started")
                r["cold_starts_s"] = []
                for i in range(args.cold_runs):
                    seconds = cold_start(client, cell, f"{name}-cold-{i + 1}")
                    r["cold_starts_s"].append(seconds)
                    log(f"{name}: cold start {i + 1}: {seconds:.2f} s")
                node = client.node(name)  # the cold nodes are gone; only this one is running
                instance = node["instances"][0]
                direct = f"http://{instance['host']}:{instance['port']}/execute"
                targets = {"gateway": (node["endpoint"], r["key"]), "direct": (direct, None)}
                for target, (url, key) in targets.items():
                    output = check_answer(url, cell, key)
                    log(f"{name}: {target} {url} -> {output}")
                r["load"] = {}
                for target, (url, key) in targets.items():
                    r["load"][target] = {}
                    for c in args.connections:
                        w = load_test(url, cell, key, c, args)
                        r["load"][target][str(c)] = w
                        log(f"{name}: {target} c={c}: {w['rps']:.0f} req/s, p50 "
                            f"{w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms, non-2xx "
                            f"{w['non_2xx']}, socket errors {w['socket_errors']}")
                if name == "sum" or "big" not in results:
                    results["big"] = big_request(node["endpoint"], r["key"])
                    big = results["big"]
                    log(f"17 MB request: {big['status']} in {big['ms']:.1f} ms")
                r.pop("node")
                r.pop("key")
                results["cells"][name] = r
        finally:
            if kernel is not None:
                try:
                    kernel.stop()
                except Exception as exc:  # noqa: BLE001
                    log(f"kernel shutdown: {exc}")

    ok = with_service("jd-bench-", args.sut_cpu, work, python=args.python, keep=args.keep)
    if ok and not args.no_tornado:
        results["tornado"] = bare_tornado(args)
    if results["cells"]:
        report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
