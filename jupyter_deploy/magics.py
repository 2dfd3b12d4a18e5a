"""The `%deploy` / `%%deploy` magics (kernel side)."""

from __future__ import annotations

import argparse
import ast
import base64
import shlex
import sys
import time
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from . import render
from .client import ClientError, DeployClient
from .models import InvalidInput
from .snapshot.capture import capture
from .types import TYPES, parse_fields


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise UsageError("see the usage above") if status else UsageError(self.format_usage())


def _parser() -> _Parser:
    parser = _Parser(prog="%deploy", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pin = sub.add_parser("pin", help="(cell magic) run the cell and pin it as a checkpoint")
    pin.add_argument("name")
    pin.add_argument("--inputs", default="")
    pin.add_argument("--outputs", default="")
    node = sub.add_parser("node").add_subparsers(dest="action", required=True,
                                                  parser_class=_Parser)
    create = node.add_parser("create")
    create.add_argument("node")
    create.add_argument("--checkpoint", required=True)
    create.add_argument("--min", type=int, default=1)
    create.add_argument("--max", type=int)
    create.add_argument("--runtime", default="process")
    create.add_argument("--env", action="append", default=[], metavar="K=V")
    create.add_argument("--no-wait", action="store_true", help="return before it is Healthy")
    create.add_argument("--timeout", type=float, default=120.0)
    node.add_parser("list")
    for action in ("status", "delete"):
        node.add_parser(action).add_argument("node")
    logs = node.add_parser("logs")
    logs.add_argument("node")
    logs.add_argument("--instance")
    logs.add_argument("--tail", type=int, default=4000)
    sub.add_parser("checkpoint").add_subparsers(dest="action", required=True,
                                                parser_class=_Parser).add_parser("list")
    call = sub.add_parser("call")
    call.add_argument("node")
    call.add_argument("inputs", nargs="*", metavar="NAME=VALUE")
    return parser


def _literal(text: str) -> Any:
    """`a=1` → 1, `s='x'` → 'x'; anything that is not a Python literal stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@magics_class
class DeployMagics(Magics):
    """`%%deploy pin ...`, `%deploy node ...`, `%deploy call ...`: see `%deploy?`."""

    _client: DeployClient | None = None

    @property
    def client(self) -> DeployClient:
        if self._client is None:
            try:
                self._client = DeployClient.discover()
            except ClientError as exc:
                raise UsageError(exc.message) from None
        return self._client

    @line_cell_magic
    def deploy(self, line: str, cell: str | None = None) -> Any:
        """Pin cells, deploy them as nodes and call them.

        %%deploy pin NAME --inputs a:float,b:float --outputs total
        %deploy node create NODE --checkpoint NAME [--min 1] [--max 1] [--env K=V ...]
        %deploy node list | status NODE | logs NODE | delete NODE
        %deploy checkpoint list
        %deploy call NODE a=1 b=2
        """
        args = _parser().parse_args(shlex.split(line))
        if (args.command == "pin") != (cell is not None):
            raise UsageError("pin is a cell magic: %%deploy pin NAME ... on the cell's first line"
                             if cell is None else "only pin takes a cell: use %deploy (one %)")
        try:
            return getattr(self, f"_{args.command}")(args, cell)
        except ClientError as exc:
            raise UsageError(exc.message) from None
        except InvalidInput as exc:
            raise UsageError(exc.message) from None

    def _pin(self, args: argparse.Namespace, cell: str) -> None:
        shell = self.shell
        inputs = parse_fields(args.inputs, "--inputs")
        outputs = parse_fields(args.outputs, "--outputs")
        if not outputs:
            raise UsageError("declare at least one output: --outputs NAME[:TYPE],...")
        source = shell.transform_cell(cell)
        if "get_ipython()" in source:
            raise UsageError("a pinned cell must be plain Python: move magics and shell "
                             "commands (%, !) to another cell")
        example = {}
        for field in inputs:
            name = field["name"]
            if name not in shell.user_ns:
                raise UsageError(f"input `{name}` has no value in the notebook: give it an "
                                 f"example value in an earlier cell (e.g. {name} = ...)")
            if not TYPES[field["type"]][1](shell.user_ns[name]):
                raise UsageError(f"input `{name}` is declared {field['type']} but its example "
                                 f"value is of type {type(shell.user_ns[name]).__name__}")
            example[name] = shell.user_ns[name]
        result = shell.run_cell(cell, store_history=False)
        if not result.success:
            raise UsageError("the cell raised an error (above): nothing was pinned")
        meta, data = capture(args.name, source, shell.user_ns, inputs, outputs, example)
        meta["data"] = base64.b64encode(data).decode()
        checkpoint = self.client.add_checkpoint(meta)
        print(render.checkpoint_pinned(checkpoint))

    def _node(self, args: argparse.Namespace, cell: None) -> Any:
        client = self.client
        if args.action == "list":
            print(render.node_table(client.nodes()))
        elif args.action == "status":
            print(render.node_status(client.node(args.node)))
        elif args.action == "logs":
            for item in client.logs(args.node, args.instance, args.tail):
                state = "removed" if item["removed"] else item["status"]
                print(f"==> {item['instance']} ({state}) <==\n{item['log'].rstrip()}\n")
        elif args.action == "delete":
            client.delete_node(args.node)
            print(f"Node {args.node} deleted.")
        elif args.action == "create":
            return self._create(args)

    def _create(self, args: argparse.Namespace) -> None:
        env = {}
        for item in args.env:
            name, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--env takes NAME=VALUE, got {item!r}")
            env[name] = value
        spec = {"name": args.node, "checkpoint": args.checkpoint, "min": args.min,
                "runtime": args.runtime, "env": env}
        if args.max is not None:
            spec["max"] = args.max
        client = self.client
        created = client.create_node(spec)
        node, key = created["node"], created["key"]
        if not args.no_wait:
            node = wait_until_settled(client, node["name"], args.timeout)
        example = client.request("GET", f"/checkpoints/{node['checkpoint']}")["example"]["input"]
        text = render.node_created(node, key, example)
        announcement = {"node": node["name"], "status": node["status"],
                        "endpoint": node["endpoint"], "key": key, "example": example}
        display({"text/plain": text, render.NODE_MIME: announcement}, raw=True)
        if node["status"] != "Healthy" and not args.no_wait:
            print(render.node_status(node), file=sys.stderr)
            for item in client.logs(node["name"], tail=2000):
                print(f"==> {item['instance']} <==\n{item['log'].rstrip()}", file=sys.stderr)

    def _checkpoint(self, args: argparse.Namespace, cell: None) -> None:
        print(render.checkpoint_table(self.client.checkpoints()))

    def _call(self, args: argparse.Namespace, cell: None) -> dict[str, Any]:
        inputs = {}
        for item in args.inputs:
            name, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"inputs are NAME=VALUE, got {item!r}")
            inputs[name] = _literal(value)
        try:
            return self.client.call(args.node, inputs)
        except ClientError as exc:
            if isinstance(exc.body, dict) and "traceback" in exc.body:
                print("\n".join(exc.body["traceback"]), file=sys.stderr)
            raise


def wait_until_settled(client: DeployClient, name: str, timeout_s: float) -> dict[str, Any]:
    """Poll the node until it is `Healthy` or `Unhealthy`, or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        node = client.node(name)
        if node["status"] in ("Healthy", "Unhealthy") or time.monotonic() > deadline:
            return node
        time.sleep(0.02)
