"""`jupyter deploy ...`: serve, run a notebook, and the node/checkpoint verbs of the magics."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..store.sqlite import default_state_dir
from . import discovery, render
from .api import ClientError, DeployClient
from .commands import CommandError, Commands, Parser, add_shared_commands


def serve(argv: list[str]) -> None:
    """Host the deploy service in a Jupyter server of its own (no other extensions)."""
    from ..control.extension import DeployApp
    from ..service.deploy import DeployService

    DeployApp.load_other_extensions = False
    DeployService.freeze_gc = True  # this process is the service's own
    DeployApp.aliases = {
        "state-dir": "DeployApp.state_dir",
        "gateway-port": "DeployApp.gateway_port",
        "gateway-grpc-port": "DeployApp.gateway_grpc_port",
        "gateway-host": "DeployApp.gateway_host",
    }
    defaults = ["--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1"]
    if os.geteuid() == 0:  # a headless service; no browser is opened as root
        defaults.append("--ServerApp.allow_root=True")
    DeployApp.launch_instance(defaults + argv)


def start_service(extra: list[str], timeout_s: float = 60.0) -> tuple[subprocess.Popen, dict]:
    """Start `jupyter deploy serve` in the background and wait until it announces itself.

    Its log goes to `service.log` in the state folder.
    """
    log_path = default_state_dir() / "service.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "jupyter_deploy.cli", "serve", *extra],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the deploy service did not start ({log_path}):\n{tail}")
        info = discovery.find()
        if info is not None and info.get("pid") == process.pid:
            return process, info
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the deploy service did not start within {timeout_s:g} s")


def stop_service(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args: argparse.Namespace) -> int:
    """Execute a notebook headless against a service; report and try each node it deployed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(args.notebook)
    notebook = nbformat.read(path, as_version=4)
    started = None
    info = discovery.find()
    if info is None:
        extra = [f"--{option.replace('_', '-')}={getattr(args, option)}"
                 for option in ("gateway_port", "gateway_grpc_port")
                 if getattr(args, option) is not None]
        started, info = start_service(extra)
        print(f"Started a deploy service (pid {started.pid}), gateway {info['gateway_url']}")
    os.environ[discovery.URL_ENV] = info["url"]
    os.environ[discovery.TOKEN_ENV] = info.get("token", "")
    failed = False
    try:
        runner = NotebookClient(notebook, timeout=args.timeout, kernel_name=args.kernel,
                                resources={"metadata": {"path": str(path.parent.resolve())}})
        try:
            runner.execute()
        except CellExecutionError as exc:
            print(f"{path}: a cell failed:\n{exc}", file=sys.stderr)
            failed = True
        announced = [output["data"][render.NODE_MIME]
                     for cell in notebook.cells for output in cell.get("outputs", [])
                     if render.NODE_MIME in output.get("data", {})]
        for node in announced:
            print(f"\nNode {node['node']} ({node['status']})\n"
                  + render.how_to_call(node["endpoint"], node["key"], node["example"]))
            failed |= not _try(node)
        if args.summary:  # it holds the keys: readable by its owner only
            summary = Path(args.summary)
            summary.touch(mode=0o600)
            summary.write_text(json.dumps(announced, indent=1))
        if started is not None and not args.exit_after_run:
            print(f"\nThe deploy service keeps running (pid {started.pid}); stop it with: "
                  f"kill {started.pid}")
            started = None
    finally:
        if started is not None:
            stop_service(started)
    return 1 if failed else 0


def _try(node: dict[str, Any]) -> bool:
    """Call the node once through the gateway with its pin-time example input."""
    body = json.dumps({"input": node["example"] or {}}).encode()
    request = urllib.request.Request(node["endpoint"], data=body, method="POST", headers={
        "Authorization": f"Bearer {node['key']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        answer, status = exc.read().decode(errors="replace"), exc.code
    except urllib.error.URLError as exc:
        answer, status = str(exc.reason), 0
    print(f"  POST {node['endpoint']} {json.dumps({'input': node['example']})}\n"
          f"  -> {status} {answer}")
    return status == 200


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="jupyter deploy")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("serve", help="host the deploy service standalone (Jupyter server options "
                   "apply, plus --state-dir, --gateway-port, --gateway-grpc-port, "
                   "--gateway-host)", add_help=False)
    run_parser = sub.add_parser("run", help="execute a notebook so its %%deploy cells pin and "
                                "deploy, then call each node it created")
    run_parser.add_argument("notebook")
    run_parser.add_argument("--exit-after-run", action="store_true",
                            help="stop the service afterwards if this command started it")
    run_parser.add_argument("--summary", help="write the nodes it created (with keys) as JSON")
    run_parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    run_parser.add_argument("--kernel", default="python3")
    run_parser.add_argument("--gateway-port", type=int,
                            help="gateway port of the service it starts, if it starts one")
    run_parser.add_argument("--gateway-grpc-port", type=int,
                            help="gateway gRPC port of the service it starts, if it starts one")
    add_shared_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return 0
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            return run(args)
        output = Commands(DeployClient.discover()).run(args)
    except (CommandError, ClientError) as exc:
        print(f"jupyter deploy: {exc if isinstance(exc, CommandError) else exc.message}",
              file=sys.stderr)
        return 1
    if output is not None:  # the outputs of `call`
        print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
