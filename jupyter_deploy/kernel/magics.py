"""The `%deploy` / `%%deploy` magics (kernel side)."""

from __future__ import annotations

import argparse
import base64
import io
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..client import render, requests_view
from ..client.api import ClientError, DeployClient
from ..client.commands import CommandError, Commands, Parser, add_shared_commands
from ..client.projects import in_project, take_project
from ..models import InvalidInput
from ..types import cell_annotations, parse_fields, parse_type
from ..types.values import Mismatch, as_instance_sees, encode
from .batch_check import check_batchable
from .capture import capture


def _parser() -> Parser:
    parser = Parser(prog="%deploy", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    pin = sub.add_parser("pin", help="(cell magic) run the cell and pin it as a checkpoint")
    pin.add_argument("name")
    pin.add_argument("--inputs", default="")
    pin.add_argument("--outputs", default="")
    pin.add_argument("--batch", action="store_true",
                     help="the cell works on stacked rows: one run may serve many callers")
    add_shared_commands(sub)
    return parser


class _Commands(Commands):
    def show_created(self, node: dict[str, Any], key: str, example: dict[str, Any] | None
                     ) -> None:
        """Text for the reader, and the same as data for `jupyter deploy run`."""
        announcement = {"node": node["name"], "status": node["status"],
                        "endpoint": node["endpoint"], "key": key, "example": example}
        display({"text/plain": render.node_created(node, key, example),
                 render.NODE_MIME: announcement}, raw=True)

    def requests(self, data: dict[str, Any], args: argparse.Namespace) -> Any:
        """A pandas DataFrame, one row per request (`--json`: the rows as JSON lines)."""
        if args.json:
            return super().requests(data, args)
        try:
            return requests_view.frame(data)
        except ImportError as exc:  # pandas is the kernel's to have, not the service's
            raise CommandError(str(exc)) from None


@magics_class
class DeployMagics(Magics):
    """`%%deploy pin ...`, `%deploy node ...`, `%deploy call ...`: see `%deploy?`."""

    shell: InteractiveShell  # IPython types it optional; a loaded magic always has one
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

        %%deploy pin NAME --inputs a:float,b:float --outputs total [--batch]
        %deploy node create NODE --checkpoint NAME [--min 1] [--max 1] [--env K=V ...]
                            [--strict] [--capture PERCENT [--capture-limit N]]
                            [--runtime process|docker|swarm] [--placement node.labels.zone==b]
                            [--config NAME] [--base-image IMAGE]
                            [--batch] [--batch-size N] [--batch-wait-ms MS]
        %deploy node create NODE --image IMAGE --port 8080 [--health-path /healthz]
                            [--telemetry-path /metrics] [--secret K=V ...] [--network bridge]
        %deploy node update NODE [--checkpoint NAME@VERSION] [--min N] [--max N] [--env K=V ...]
                            [--strict | --no-strict] [--capture PERCENT] [--capture-limit N]
        %deploy node list | status NODE | suspend NODE | resume NODE | delete NODE
        %deploy node logs NODE [--instance ID] [--tail BYTES] [--request-id ID] [--follow]
        %deploy alias set ALIAS NODE=WEIGHT [NODE=WEIGHT ...] [--public] [--shadow NODE=PCT]
        %deploy alias list | delete ALIAS
        %deploy checkpoint list
        %deploy call NODE a=1 b=2
        %deploy requests NODE [--last 100]       → a pandas DataFrame of captured requests
        --project NAME on any of them: act in that project (default: your personal one)
        """
        try:
            line_words, project = take_project(words(line))
            args = _parser().parse_args(line_words)
            if (args.command == "pin") != (cell is not None):
                raise UsageError("pin is a cell magic: %%deploy pin NAME ... on the cell's "
                                 "first line" if cell is None else
                                 "only pin takes a cell: use %deploy (one %)")
            if args.command == "pin" and cell is not None:
                return self._pin(args, cell, in_project(self.client, project))
            return _Commands(in_project(self.client, project)).run(args)
        except (CommandError, ClientError, InvalidInput) as exc:
            raise UsageError(str(exc) if isinstance(exc, CommandError) else exc.message) from None
        except SystemExit:  # after `--help`, which argparse has printed
            return None

    def _pin(self, args: argparse.Namespace, cell: str, client: DeployClient) -> None:
        shell = self.shell
        if shell is None:
            raise UsageError("%%deploy pin runs in an IPython kernel")
        source = shell.transform_cell(cell)
        if "get_ipython()" in source:
            raise UsageError("a pinned cell must be plain Python: move magics and shell "
                             "commands (%, !) to another cell")
        annotations = cell_annotations(source)
        inputs = parse_fields(args.inputs, "--inputs", annotations)
        outputs = parse_fields(args.outputs, "--outputs", annotations)
        if not outputs:
            raise UsageError("declare at least one output: --outputs NAME[:TYPE],...")
        example = {}
        for field in inputs:
            name = field["name"]
            if name not in shell.user_ns:
                raise UsageError(f"input `{name}` has no value in the notebook: give it an "
                                 f"example value in an earlier cell (e.g. {name} = ...)")
            kind = parse_type(field["type"])
            try:
                encode(kind, shell.user_ns[name], name)
            except Mismatch as exc:
                raise UsageError(f"the example value of input `{name}` does not fit its "
                                 f"declared type: {exc.message}") from None
            example[name] = shell.user_ns[name] = as_instance_sees(kind, shell.user_ns[name])
        result = shell.run_cell(cell, store_history=False)
        if not result.success:
            raise UsageError("the cell raised an error (above): nothing was pinned")
        meta, data = capture(args.name, source, shell.user_ns, inputs, outputs, example)
        if args.batch:
            check_batchable(source, shell.user_ns, meta["inputs"], meta["outputs"], example)
            meta["batch"] = True
        meta["data"] = base64.b64encode(data).decode()
        checkpoint = client.add_checkpoint(meta)
        print(render.checkpoint_pinned(checkpoint))
        shipped = checkpoint["environment"].get("local_code")
        if shipped:
            print(f"  local code: {_shipped(shipped)}")


def _shipped(modules: list[dict[str, Any]]) -> str:
    """`helper.py, shapes/ (3 files)`: the local code a checkpoint carries."""
    shown = []
    for module in modules:
        name, files = module["module"], module["files"]
        if files == [f"{name}.py"]:
            shown.append(files[0])
        else:
            shown.append(f"{name}/ ({len(files)} file{'s' if len(files) != 1 else ''})")
    return ", ".join(shown)


def words(line: str) -> list[str]:
    """A magic's line split as a shell splits it: a `#` that starts a word starts a comment
    (the README's examples carry comments), one inside a word or in quotes does not."""
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    found: list[str] = []
    while not line[stream.tell():].lstrip().startswith("#"):
        word = lexer.get_token()
        if word is None:
            break
        found.append(word)
    return found
