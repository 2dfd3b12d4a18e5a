"""`jupyter deploy run NOTEBOOK`: execute a notebook headless against a deploy service, then
call each node it created that still exists, and say (or, with --cleanup, delete) what it
leaves behind."""

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

from ..gateway.fleet import stop_workers
from ..runtimes.lease import ask_everything
from ..store.sqlite import default_state_dir
from . import discovery, render
from .api import ClientError, DeployClient
from .commands import CommandError


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


def stop_service(process: subprocess.Popen, state_dir: Path | None = None) -> None:
    """Stop a service `start_service` started (of `state_dir`, by default the default
    folder), with its instances and gateway workers."""
    state_dir = state_dir or default_state_dir()
    ask_everything(state_dir)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    stop_workers(state_dir)  # those of a service that had to be killed


def run(args: argparse.Namespace) -> int:
    """Execute a notebook headless against a service; report and try each node it deployed."""
    if not Path(args.notebook).is_file():
        raise CommandError(f"no notebook at {args.notebook}")
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
    client = DeployClient(info["url"], info.get("token", ""))
    try:
        before = inventory(client)
        passed, announced = execute(Path(args.notebook), args)
        passed &= try_nodes(client, announced)
        if args.summary:  # it holds the keys: readable by its owner only
            summary = Path(args.summary)
            summary.touch(mode=0o600)
            summary.write_text(json.dumps(announced, indent=1))
        made = created(client, before, announced)
        if args.cleanup:
            clean_up(client, made)
        elif not passed:
            left_behind(made, stopping=started is not None and args.exit_after_run)
        if started is not None and not args.exit_after_run:
            print(f"\nThe deploy service keeps running (pid {started.pid}); stop it with: "
                  f"kill {started.pid}")
            started = None
    finally:
        if started is not None:
            stop_service(started)
    return 0 if passed else 1


def execute(path: Path, args: argparse.Namespace) -> tuple[bool, list[dict[str, Any]]]:
    """Run every cell; whether none failed, and the nodes the cells announced."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    runner = NotebookClient(notebook, timeout=args.timeout, kernel_name=args.kernel,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    passed = True
    try:
        runner.execute()
    except CellExecutionError as exc:
        print(f"{path}: a cell failed:\n{exc}", file=sys.stderr)
        passed = False
    announced = [output["data"][render.NODE_MIME]
                 for cell in notebook.cells for output in cell.get("outputs", [])
                 if render.NODE_MIME in output.get("data", {})]
    return passed, announced


def try_nodes(client: DeployClient, announced: list[dict[str, Any]]) -> bool:
    """Call each announced node that still exists once; whether every call succeeded."""
    passed = True
    for node in announced:
        try:
            status = client.node(node["node"])["status"]
        except ClientError as exc:
            if exc.status != 404:
                raise
            print(f"\nNode {node['node']}: deleted by the notebook")
            continue
        print(f"\nNode {node['node']} ({status})\n"
              + render.how_to_call(node["endpoint"], node["key"], node["example"]))
        passed &= _try(node)
    return passed


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


def inventory(client: DeployClient) -> dict[str, dict[str, str]]:
    """The service's nodes (with their statuses) and aliases, by name."""
    return {"node": {node["name"]: node["status"] for node in client.nodes()},
            "alias": {alias["name"]: "" for alias in client.aliases()}}


def created(client: DeployClient, before: dict[str, dict[str, str]],
            announced: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """What the run made that still exists: the nodes it announced or that are new, and
    the new aliases."""
    now = inventory(client)
    names = {node["node"] for node in announced} | (now["node"].keys() - before["node"].keys())
    return {"node": {name: status for name, status in now["node"].items() if name in names},
            "alias": {name: "" for name in now["alias"].keys() - before["alias"].keys()}}


def clean_up(client: DeployClient, made: dict[str, dict[str, str]]) -> None:
    """Delete what the run made: its aliases first (they route to its nodes), then nodes."""
    deleted = []
    for kind, delete in (("alias", client.delete_alias), ("node", client.delete_node)):
        for name in sorted(made[kind]):
            try:
                delete(name)
            except ClientError as exc:
                print(f"Could not delete {kind} {name}: {exc.message}", file=sys.stderr)
            else:
                deleted.append(f"{kind} {name}")
    if deleted:
        print(f"\nDeleted {_join(deleted)}, which this run created.")


def left_behind(made: dict[str, dict[str, str]], stopping: bool) -> None:
    """Tell, after a failed run, what it leaves in the service's store."""
    items = [f"node {name} ({status})" for name, status in sorted(made["node"].items())]
    items += [f"alias {name}" for name in sorted(made["alias"])]
    if not items:
        return
    where = (" They stay in the service's store and come back when a service starts on it "
             "again." if stopping else "")
    print(f"\nThe run failed and left behind: {_join(items)}.{where} Delete them with "
          "`jupyter deploy node delete NODE` (and `alias delete ALIAS`), or run with --cleanup "
          "to delete what a run creates.", file=sys.stderr)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
