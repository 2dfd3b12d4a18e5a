"""The verbs `%deploy` and `jupyter deploy` share: their arguments, and what each one does.

The magics add `pin` (it needs the kernel); the CLI adds `serve` and `run`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from . import render, requests_view
from .api import ClientError, DeployClient
from .wait import NodeNotHealthy, Watch, generation, latest_seq, wait_for_node


class CommandError(Exception):
    """A mistake in the command or a refusal by the service, told in one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message}\n{self.format_usage().rstrip()}")


def add_shared_commands(sub: Any) -> None:
    """`node ...`, `checkpoint list`, `call ...` under the subparsers `sub`."""
    node = sub.add_parser("node", help="create, inspect and delete nodes").add_subparsers(
        dest="action", required=True, parser_class=Parser)
    create = node.add_parser("create", help="create a node from a checkpoint or a Docker image")
    create.add_argument("node")
    made = create.add_mutually_exclusive_group(required=True)
    made.add_argument("--checkpoint", help="NAME (the latest) or NAME@VERSION")
    made.add_argument("--image", help="a Docker image to run (a Docker-image node)")
    create.add_argument("--min", type=int, default=1)
    create.add_argument("--max", type=int)
    create.add_argument("--runtime", help="process, docker or swarm (default: the service's "
                        "default_runtime, process unless set; --image: docker)")
    add_container_options(create)
    create.add_argument("--env", action="append", default=[], metavar="K=V")
    create.add_argument("--strict", action="store_true", help="a failed replay check (the "
                        "example input does not give the notebook's output) fails the node")
    create.add_argument("--no-wait", action="store_true", help="return before it is Healthy")
    create.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for Healthy")
    update = node.add_parser("update", help="change a node: a new checkpoint or env rolls "
                             "its instances one by one")
    update.add_argument("node")
    update.add_argument("--checkpoint")
    update.add_argument("--min", type=int)
    update.add_argument("--max", type=int)
    update.add_argument("--env", action="append", metavar="K=V")
    update.add_argument("--strict", action=argparse.BooleanOptionalAction,
                        help="whether a failed replay check fails the node")
    update.add_argument("--no-wait", action="store_true",
                        help="return before the node is Healthy and its instances rolled")
    update.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for Healthy and the roll")
    for parser in (create, update):
        parser.add_argument("--capture", type=float, metavar="PERCENT",
                            help="record this share of the requests with their answers (0: off)")
        parser.add_argument("--capture-limit", type=int, metavar="N",
                            help="requests kept (default 1000), the oldest dropped")
        parser.add_argument("--expose-tracebacks", action=argparse.BooleanOptionalAction,
                            help="anonymous callers of a public alias see the cell's traceback")
        parser.add_argument("--batch", action=argparse.BooleanOptionalAction, help="one run "
                            "serves many callers (a checkpoint pinned with --batch)")
        parser.add_argument("--batch-size", type=int, metavar="N",
                            help="callers one run serves, at most (default 32; implies --batch)")
        parser.add_argument("--batch-wait-ms", type=float, metavar="MS",
                            help="how long a batch may wait for more callers (default 5)")
    node.add_parser("list")
    for action in ("status", "delete", "suspend", "resume"):
        node.add_parser(action).add_argument("node")
    logs = node.add_parser("logs")
    logs.add_argument("node")
    logs.add_argument("--instance")
    logs.add_argument("--tail", type=int, default=4000, help="bytes of each log")
    logs.add_argument("--request-id", help="only the lines of this request (x-request-id)")
    logs.add_argument("--follow", action="store_true",
                      help="then print new lines as they are written, until interrupted")
    _add_alias_commands(sub)
    _add_other_commands(sub)


def _add_alias_commands(sub: Any) -> None:
    """`alias set | list | delete`."""
    alias = sub.add_parser("alias", help="stable endpoints that split traffic across nodes"
                           ).add_subparsers(dest="action", required=True, parser_class=Parser)
    set_alias = alias.add_parser("set", help="create or re-point: ALIAS NODE=WEIGHT ...")
    set_alias.add_argument("alias")
    set_alias.add_argument("weights", nargs="+", metavar="NODE=WEIGHT")
    set_alias.add_argument("--public", action=argparse.BooleanOptionalAction,
                           help="callable without a key (--no-public: with one); "
                           "unchanged when not given")
    set_alias.add_argument("--force", action="store_true",
                           help="give 100%% to a node that is not Healthy")
    set_alias.add_argument("--meta", action="append", default=[], metavar="K=V")
    set_alias.add_argument("--shadow", metavar="NODE=PERCENT",
                           help="mirror a share of the requests to NODE, answers recorded")
    set_alias.add_argument("--no-shadow", action="store_true",
                           help="stop mirroring requests to the alias's shadow node")
    set_alias.add_argument("--sticky", metavar="header:NAME|input:NAME",
                           help="keep each caller on one node and instance by this key")
    alias.add_parser("list")
    alias.add_parser("delete").add_argument("alias")


def _add_other_commands(sub: Any) -> None:
    """`checkpoint list`, `requests NODE`, `call NODE a=1 ...`."""
    sub.add_parser("checkpoint", help="list checkpoints").add_subparsers(
        dest="action", required=True, parser_class=Parser).add_parser("list")
    requests = sub.add_parser("requests", help="the requests a node captured, newest last")
    requests.add_argument("node")
    requests.add_argument("--last", type=int, default=100)
    requests.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    call = sub.add_parser("call", help="run a node's cell: NODE a=1 b='text'")
    call.add_argument("node")
    call.add_argument("inputs", nargs="*", metavar="NAME=VALUE")


def add_container_options(create: argparse.ArgumentParser) -> None:
    """`node create` options of containers and Docker-image nodes (issue 4)."""
    group = create.add_argument_group("containers")
    group.add_argument("--config", help="instance configuration: CPU, memory, GPUs (e.g. small)")
    group.add_argument("--memory", type=int, metavar="MB", help="memory limit of an instance")
    group.add_argument("--disk", type=int, metavar="MB", help="disk limit of a container")
    group.add_argument("--secret", action="append", default=[], metavar="K=V",
                       help="an environment variable kept secret (never shown again)")
    group.add_argument("--secret-file", action="append", default=[], metavar="K=V",
                       help="a secret as the file /run/secrets/K (mode 0400, docker runtime; "
                       "unlike --secret, not shown by docker inspect)")
    group.add_argument("--base-image", help="base of the checkpoint's image (docker runtime)")
    group.add_argument("--placement", action="append", default=[], metavar="CONSTRAINT",
                       help="swarm runtime: a constraint on the hosts, e.g. "
                       "node.labels.zone==b (repeatable)")
    group.add_argument("--network", choices=("host", "bridge"),
                       help="host (default: the instance listens on $PORT, on 127.0.0.1) or "
                       "bridge (its --port published on 127.0.0.1)")
    image = create.add_argument_group("Docker-image nodes (--image)")
    image.add_argument("--port", type=int, help="the port the image listens on")
    image.add_argument("--protocol", choices=("http", "grpc"))
    image.add_argument("--health-path", help="HTTP path of the health check (default /)")
    image.add_argument("--health-port", type=int)
    image.add_argument("--health-protocol", choices=("http", "grpc"))
    for name in ("timeout", "interval"):
        image.add_argument(f"--health-{name}", type=float, metavar="S")
    for name in ("fail", "pass"):
        image.add_argument(f"--health-{name}", type=int, metavar="N",
                           help=f"checks {name}ed in a row to change the status")
    image.add_argument("--session-timeout", type=float, metavar="S",
                       help="a request's deadline through the gateway")
    image.add_argument("--idle-timeout", type=float, metavar="S",
                       help="idle connections to an instance are closed after this")
    image.add_argument("--telemetry-path", help="Prometheus metrics path, e.g. /metrics")
    image.add_argument("--telemetry-port", type=int)
    image.add_argument("--registry", metavar="SERVER", help="registry of a private image")
    image.add_argument("--registry-user")
    image.add_argument("--registry-password")


def container_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The container settings the `node create` command line gives."""
    spec: dict[str, Any] = {}
    simple = {"image": "image", "config": "config", "memory": "memory_mb", "disk": "disk_mb",
              "base_image": "base_image", "network": "network", "port": "port",
              "protocol": "protocol", "session_timeout": "session_timeout_s",
              "idle_timeout": "idle_timeout_s"}
    for option, field in simple.items():
        if getattr(args, option) is not None:
            spec[field] = getattr(args, option)
    health = {field: getattr(args, f"health_{option}") for option, field in (
        ("path", "path"), ("port", "port"), ("protocol", "protocol"), ("timeout", "timeout_s"),
        ("interval", "interval_s"), ("fail", "fail_threshold"), ("pass", "pass_threshold"))
        if getattr(args, f"health_{option}") is not None}
    if health:
        spec["health"] = health
    if args.telemetry_path or args.telemetry_port:
        spec["telemetry"] = {"path": args.telemetry_path or "/metrics",
                             "port": args.telemetry_port or 0}
    if args.placement:
        spec["placement"] = list(args.placement)
    if args.secret:
        spec["secrets"] = _pairs(args.secret, "--secret values")
    if args.secret_file:
        spec["secret_files"] = _pairs(args.secret_file, "--secret-file values")
    if args.registry_user or args.registry_password or args.registry:
        registry = {"username": args.registry_user or "", "password":
                    args.registry_password or ""}
        if args.registry:
            registry["server"] = args.registry
        spec["registry"] = registry
    return spec


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"{what} take NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _literal(text: str) -> Any:
    """`1` → 1, `'x'` → 'x'; anything that is not a Python literal stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """`strict`, `expose_tracebacks`, `capture` and `batch` of a node, as far as the command
    gives them."""
    options: dict[str, Any] = {}
    if args.strict is not None:
        options["strict"] = bool(args.strict)
    if args.expose_tracebacks is not None:
        options["expose_tracebacks"] = args.expose_tracebacks
    if args.capture is not None or args.capture_limit is not None:
        percent = args.capture
        capture = {} if percent is None else {
            "percent": int(percent) if percent.is_integer() else percent}
        if args.capture_limit is not None:
            capture["limit"] = args.capture_limit
        options["capture"] = capture
    if args.batch is False:
        options["batch"] = None
    elif args.batch or args.batch_size is not None or args.batch_wait_ms is not None:
        wait = args.batch_wait_ms
        options["batch"] = {key: value for key, value in (
            ("max_size", args.batch_size),
            ("max_wait_ms", int(wait) if wait is not None and wait.is_integer() else wait))
            if value is not None}
    return options


class Commands:
    """Runs a parsed shared command against the control API and prints the result."""

    def __init__(self, client: DeployClient) -> None:
        self.client = client

    def run(self, args: argparse.Namespace) -> Any:
        try:
            if args.command == "checkpoint":
                print(render.checkpoint_table(self.client.checkpoints()))
            elif args.command == "call":
                return self.call(args)
            elif args.command == "requests":
                return self.requests(self.client.requests(args.node, args.last), args)
            elif args.command == "alias":
                self.alias(args)
            elif args.action == "update":
                self.update(args)
            elif args.action in ("suspend", "resume"):
                node = self.client.suspend_node(args.node, args.action == "suspend")
                print(render.node_status(node))
            elif args.action == "create":
                self.create(args)
            elif args.action == "list":
                print(render.node_table(self.client.nodes()))
            elif args.action == "status":
                print(render.node_status(self.client.node(args.node)))
            elif args.action == "logs":
                self.logs(args)
            elif args.action == "delete":
                self.client.delete_node(args.node)
                print(f"Node {args.node} deleted.")
        except ClientError as exc:
            raise CommandError(exc.message) from None
        return None

    def create(self, args: argparse.Namespace) -> None:
        spec = {"name": args.node, "min": args.min, "env": _pairs(args.env, "--env values"),
                **container_spec(args)}
        if args.checkpoint is not None:
            spec["checkpoint"] = args.checkpoint
        if args.runtime is not None:
            spec["runtime"] = args.runtime
        if args.max is not None:
            spec["max"] = args.max
        spec.update(_options(args))
        created = self.client.create_node(spec)
        node, key = created["node"], created["key"]
        if node.get("image"):
            example = None
        else:
            example = self.client.request("GET", f"/checkpoints/{node['checkpoint']}")["example"]
            example = example["input"]
        if not args.no_wait:
            node = self.wait(node, args.timeout, Watch(after=node["created"]),
                             announce=lambda n: self.show_created(n, key, example))
        self.show_created(node, key, example)

    def wait(self, node: dict[str, Any], timeout_s: float, watch: Watch,
             rolled_from: set[str] | None = None,
             announce: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """The node once it is Healthy (and rolled); else, after `announce` of the node as
        it is, its status on stderr and NodeNotHealthy."""
        try:
            return wait_for_node(self.client, node, timeout_s, watch, rolled_from,
                                 progress=lambda line: print(line, flush=True))
        except NodeNotHealthy as exc:
            if announce is not None:
                announce(exc.node)
            print(render.node_status(exc.node), file=sys.stderr, flush=True)
            raise

    def logs(self, args: argparse.Namespace) -> None:
        """Each instance's log; with --follow, its lines as they come, marked by instance."""
        if not args.follow:
            for item in self.client.logs(args.node, args.instance, args.tail, args.request_id):
                state = "removed" if item["removed"] else item["status"]
                print(f"==> {item['instance']} ({state}) <==\n{item['log'].rstrip()}\n")
            return
        try:
            for item in self.client.follow_logs(args.node, args.instance, args.tail,
                                                args.request_id):
                for line in item["log"].splitlines():
                    print(f"{item['instance']} | {line}", flush=True)
        except KeyboardInterrupt:
            pass

    def update(self, args: argparse.Namespace) -> None:
        """Change the node; unless --no-wait, wait until it is Healthy and, when the change
        rolls its instances, until every old one is replaced; then show it."""
        changes: dict[str, Any] = {k: getattr(args, k) for k in ("checkpoint", "min", "max")
                                   if getattr(args, k) is not None}
        if args.env is not None:
            changes["env"] = _pairs(args.env, "--env values")
        changes.update(_options(args))
        before = self.client.node(args.node)
        # the instances it has now are not new ones that failed when they stop in the roll
        watch = Watch(since=latest_seq(self.client, args.node),
                      healthy={i["id"] for i in before["instances"]})
        node = self.client.update_node(args.node, changes)
        if not (args.no_wait or node["suspended"]):
            rolls = generation(before) != generation(node)
            rolled_from = {i["id"] for i in before["instances"]} if rolls else None
            node = self.wait(node, args.timeout, watch, rolled_from)
        print(render.node_status(node))

    def alias(self, args: argparse.Namespace) -> None:
        if args.action == "list":
            print(render.alias_table(self.client.aliases()))
        elif args.action == "delete":
            self.client.delete_alias(args.alias)
            print(f"Alias {args.alias} deleted.")
        else:
            weights = {}
            for node, weight in _pairs(args.weights, "weights").items():
                if not weight.isdecimal():
                    raise CommandError(f"a weight is a whole percent, got {node}={weight}")
                weights[node] = int(weight)
            spec: dict[str, Any] = {"nodes": weights}
            if args.public is not None:
                spec["public"] = args.public
            if args.force:
                spec["force"] = True
            if args.meta:
                spec["metadata"] = _pairs(args.meta, "--meta values")
            if args.shadow and args.no_shadow:
                raise CommandError("give --shadow or --no-shadow, not both")
            if args.no_shadow:
                spec["shadow"] = None
            if args.shadow:
                (node, percent), = _pairs([args.shadow], "--shadow").items()
                spec["shadow"] = {"node": node, "percent": _literal(percent)}
            if args.sticky:
                kind, _, name = args.sticky.partition(":")
                spec["sticky"] = {kind: name}
            result = self.client.set_alias(args.alias, spec)
            self.show_alias(result["alias"], result["key"])
            for warning in result.get("warnings", []):
                print(f"Note: {warning}")

    def requests(self, data: dict[str, Any], args: argparse.Namespace) -> None:
        print(requests_view.json_lines(data) if args.json else requests_view.table(data))

    def show_alias(self, alias: dict[str, Any], key: str | None) -> None:
        print(render.alias_set(alias, key))

    def show_created(self, node: dict[str, Any], key: str, example: dict[str, Any] | None
                     ) -> None:
        print(render.node_created(node, key, example))

    def call(self, args: argparse.Namespace) -> dict[str, Any]:
        inputs = {name: _literal(value)
                  for name, value in _pairs(args.inputs, "inputs").items()}
        try:
            return self.client.call(args.node, inputs)
        except ClientError as exc:
            if isinstance(exc.body, dict) and "traceback" in exc.body:
                print("\n".join(exc.body["traceback"]), file=sys.stderr)
            raise
