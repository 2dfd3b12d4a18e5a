"""`jupyter deploy ...`: serve, run a notebook, and the node/checkpoint verbs of the magics."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .api import ClientError, DeployClient
from .commands import CommandError, Commands, Parser, add_shared_commands
from .headless import run, stop_service
from .wait import NodeNotHealthy

__all__ = ["main", "serve", "stop_service"]


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
    except (CommandError, ClientError, NodeNotHealthy) as exc:
        print(f"jupyter deploy: {exc.message if isinstance(exc, ClientError) else exc}",
              file=sys.stderr)
        return 1
    if output is not None:  # the outputs of `call`
        print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
