"""`jupyter deploy ...`: serve, run a notebook, and the node/checkpoint verbs of the magics."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..gateway.fleet import stop_workers
from ..runtimes.lease import LEASE_FILE, ask_everything, holder
from . import discovery
from .api import ClientError, DeployClient
from .commands import CommandError, Commands, Parser, add_shared_commands
from .headless import run, stop_service
from .projects import add_project_commands, in_project, run_project_command, take_project
from .wait import NodeNotHealthy

__all__ = ["main", "serve", "stop_service"]


def serve(argv: list[str]) -> int:
    """Host the deploy service in a Jupyter server of its own (no other extensions); 1 with
    a one-line reason when the service cannot start (its folder in use, a port taken, a
    setting refused)."""
    from ..control.extension import DeployApp
    from ..service.deploy import DeployService

    DeployApp.load_other_extensions = False
    DeployApp.exit_on_failure = True
    DeployApp.stop_on_sigint = True
    DeployService.freeze_gc = True  # this process is the service's own
    DeployApp.aliases = {
        "state-dir": "DeployApp.state_dir",
        "gateway-port": "DeployApp.gateway_port",
        "gateway-grpc-port": "DeployApp.gateway_grpc_port",
        "gateway-host": "DeployApp.gateway_host",
    }
    # a setting the extension refuses ends the start, not just the extension: else the
    # server runs on without it, and, not hosting, starts a service of its own
    defaults = ["--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1",
                "--DeployApp.host_service=True",
                "--ServerApp.reraise_server_extension_failures=True"]
    if os.geteuid() == 0:  # a headless service; no browser is opened as root
        defaults.append("--ServerApp.allow_root=True")
    if os.environ.get("JUPYTERHUB_SERVICE_NAME") and os.environ.get("JUPYTERHUB_API_TOKEN"):
        from ..control.jupyterhub import serve_options  # a hub's service: its address, its auth

        defaults = [option for option in defaults if not option.startswith("--ServerApp.ip=")]
        defaults += serve_options()
    DeployApp.launch_instance(defaults + argv)  # a refused setting: logged, exit status 1
    if DeployApp.failure:
        print(f"jupyter deploy serve: {DeployApp.failure}", file=sys.stderr)
        return 1
    return 0


def _service_of(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None]:
    """The state folder of `--state-dir` (or the default) and its running service, if any."""
    folder = Path(args.state_dir) if args.state_dir else discovery.state_dir()
    return folder, discovery.read_service(folder)


def status(args: argparse.Namespace) -> int:
    """Say whether a service runs for the state folder: its pid, URLs and nodes."""
    folder, info = _service_of(args)
    if info is None:
        print(f"no deploy service runs for the state folder {folder}")
        return 1
    try:
        nodes: object = len(DeployClient(info["url"], info.get("token", ""), 10).nodes())
    except ClientError as exc:
        nodes = f"unknown ({exc.message})"
    print(f"deploy service of {folder}: running, pid {info['pid']}\n"
          f"control API: {info['url']}\ngateway:     {info.get('gateway_url', '')}\n"
          f"gRPC:        {info.get('gateway_grpc_address', '')}\nnodes:       {nodes}")
    return 0


def stop(args: argparse.Namespace) -> int:
    """SIGTERM the service of the state folder and wait until it has let the folder go; with
    --everything, its instances and gateway workers stop too."""
    folder, info = _service_of(args)
    if info is None:
        stopped = stop_workers(folder) if args.everything else []
        print(f"no deploy service runs for the state folder {folder}: nothing to stop"
              + (f" but {len(stopped)} gateway worker(s), stopped" if stopped else ""))
        return 0
    pid = int(info["pid"])
    if args.everything:
        ask_everything(folder)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    # The lease, not the pid: a stopped service may linger as a zombie of its parent.
    while holder(folder / LEASE_FILE) == pid:
        if time.monotonic() > deadline:
            print(f"jupyter deploy stop: the deploy service (pid {pid}) still runs after "
                  f"{args.timeout:g} s; `kill -9 {pid}` ends it", file=sys.stderr)
            return 1
        time.sleep(0.05)
    if args.everything:  # a service killed before it could read the request leaves them
        stop_workers(folder)
    print(f"stopped the deploy service of {folder} (pid {pid})"
          + (" with its instances and gateway workers" if args.everything else
             "; its gateway workers and instances run on"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="jupyter deploy", epilog="--project NAME, anywhere in a command: act "
                    "in that project (default: your personal project)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("serve", help="host the deploy service standalone (Jupyter server options "
                   "apply, plus --state-dir, --gateway-port, --gateway-grpc-port, "
                   "--gateway-host)", add_help=False)
    for verb, text in (("status", "whether a deploy service runs for the state folder"),
                       ("stop", "stop the deploy service of the state folder")):
        verb_parser = sub.add_parser(verb, help=text)
        verb_parser.add_argument("--state-dir", help="default: $JUPYTER_DEPLOY_STATE_DIR or "
                                 "deploy/ in the Jupyter data dir")
    verb_parser.add_argument("--timeout", type=float, default=30.0,
                             help="seconds to wait for it to stop")
    verb_parser.add_argument("--everything", action="store_true",
                             help="stop its instances and gateway workers too (else they run "
                             "on, and the next service adopts them)")
    run_parser = sub.add_parser("run", help="execute a notebook so its %%deploy cells pin and "
                                "deploy, then call each node it created")
    run_parser.add_argument("notebook")
    run_parser.add_argument("--exit-after-run", action="store_true",
                            help="stop the service afterwards if this command started it")
    run_parser.add_argument("--summary", help="write the nodes it created (with keys) as JSON")
    run_parser.add_argument("--cleanup", action="store_true",
                            help="afterwards, delete the nodes and aliases the run created, "
                            "whether it passed or failed")
    run_parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    run_parser.add_argument("--kernel", default="python3")
    run_parser.add_argument("--gateway-port", type=int,
                            help="gateway port of the service it starts, if it starts one")
    run_parser.add_argument("--gateway-grpc-port", type=int,
                            help="gateway gRPC port of the service it starts, if it starts one")
    add_shared_commands(sub)
    add_project_commands(sub, Parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    try:
        argv, project = take_project(argv)
        args = _parser().parse_args(argv)
        if args.command in ("run", "status", "stop"):
            return {"run": run, "status": status, "stop": stop}[args.command](args)
        client = in_project(DeployClient.discover(), project)
        if args.command == "project":
            run_project_command(client, args)
            return 0
        output = Commands(client).run(args)
    except (CommandError, ClientError, NodeNotHealthy) as exc:
        print(f"jupyter deploy: {exc.message if isinstance(exc, ClientError) else exc}",
              file=sys.stderr)
        return 1
    if output is not None:  # the outputs of `call`
        print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
