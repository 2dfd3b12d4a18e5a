"""The deploy service: store + supervisor + gateway, with no jupyter_server dependency.

The server extension hosts it inside a Jupyter server; `jupyter deploy serve` hosts the same
object standalone. Every control-API verb is a method here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import gc
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..client import render
from ..gateway.app import Gateway, execute
from ..gateway.capture import Recorder, captured
from ..gateway.grpc import GrpcGateway
from ..gateway.ids import new_request_id
from ..gateway.routing import Routes, hash_key, new_key
from ..http.protocol import Response
from ..models import (
    Alias,
    Conflict,
    Instance,
    InvalidInput,
    Node,
    NodeStatus,
    NotFound,
    check_name,
    node_status,
)
from ..runtimes.limits import DEFAULT_CONFIGS, check_configs
from ..runtimes.logfiles import Follower, has_request_id
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor
from ..types import InputCheck, check_fields
from . import docker_nodes
from .validation.nodes import alias_settings, body_object

RUNTIMES = ("process", "docker")


class DeployService:
    def __init__(self, state_dir: str | Path, gateway_host: str = "127.0.0.1",
                 gateway_port: int = 8890, request_timeout_s: float = 15.0,
                 log: logging.Logger | None = None, gateway_grpc_port: int = 8891,
                 log_max_bytes: int = 10 * 1024 * 1024, log_files: int = 3,
                 base_image: str = "", instance_configs: dict[str, Any] | None = None,
                 keep_containers: bool = True,
                 **supervisor_options: Any) -> None:
        self.state_dir = Path(state_dir)
        self.log_max_bytes = log_max_bytes
        self.log_files = log_files
        self.gateway_host = gateway_host
        self.gateway_port = gateway_port
        self.gateway_grpc_port = gateway_grpc_port
        self.request_timeout_s = request_timeout_s
        self.log = log or logging.getLogger("jupyter_deploy")
        self.supervisor_options = supervisor_options
        self.base_image = base_image  # "": the local base image if there is one, else public
        self.configs = check_configs(DEFAULT_CONFIGS if instance_configs is None
                                     else instance_configs)
        self.keep_containers = keep_containers
        self._events_changed = asyncio.Event()
        self.running = False
        self.start_error = "it has not started yet"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def gateway_grpc_address(self) -> str:
        """host:port of the gateway's gRPC server."""
        return f"{self.gateway_host}:{self.gateway_grpc_port}"

    async def start(self) -> None:
        self.store = Store(self.state_dir)
        self.routes = Routes()
        self.docker, self.runtime = docker_nodes.runtimes(
            self.store, self.base_image, self.configs, self.request_timeout_s,
            self.keep_containers, lambda node, line: self.supervisor.note(node, line), self.log,
            self.log_max_bytes, self.log_files)
        self.gateway = Gateway(self.routes, request_timeout_s=self.request_timeout_s,
                               describe=self.describe)
        self.gateway.recorder = self.recorder = Recorder(self.routes, self.store)
        self.supervisor = Supervisor(self.store, self.runtime, self.routes, self._input_check,
                                     log=self.log,
                                     drain_timeout_s=self.request_timeout_s,
                                     replay_timeout_s=self.request_timeout_s,
                                     **self.supervisor_options)
        self.gateway.metrics.report = self.supervisor.note  # families its metrics leave out
        self.grpc = GrpcGateway(self.gateway, lambda: self.supervisor.nodes,
                                self._checkpoint_meta)
        try:
            self.gateway_port = await self.gateway.listen(self.gateway_host, self.gateway_port)
            self.gateway_grpc_port = await self.grpc.listen(self.gateway_host,
                                                            self.gateway_grpc_port)
            self.gateway.proto_text = self.grpc.proto_text
            self.supervisor.listeners.append(self.grpc.health.changed)
            self.supervisor.listeners.append(lambda event: self._events_changed.set())
            for node in self.store.nodes():
                self.supervisor.add_node(node, is_new=False)
            # Containers outlive the service: those still wanted are taken back.
            await docker_nodes.adopt(self.store, self.supervisor, self.docker, self.log)
            for alias in self.store.aliases():
                self.routes.set_alias(alias.name, alias.key_hash, alias.public, alias.nodes,
                                      alias.shadow, alias.sticky)
            await self.supervisor.start()
            self.recorder.start()
        except BaseException:  # leave nothing half-started: the ports, the state lock
            await self.runtime.close()
            await self.gateway.stop()
            await self.grpc.stop()
            self.store.close()
            raise
        self.running = True
        # What the server has built so far lives as long as it does: keep it out of the full
        # garbage collections that would otherwise pause the gateway for tens of milliseconds.
        gc.freeze()
        self.log.info("jupyter_deploy: state in %s, gateway on %s, gRPC on %s", self.state_dir,
                      self.gateway_url, self.gateway_grpc_address)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self.start_error = "it has stopped"
        await self.supervisor.stop()
        await self.gateway.stop()
        await self.grpc.stop()
        await self.recorder.stop()
        self.store.close()

    # checkpoints -----------------------------------------------------------------------------

    async def add_checkpoint(self, body: Any) -> dict[str, Any]:
        """Store a checkpoint sent by a kernel: its metadata and base64 pickled state."""
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        check_name(body.get("name"), "name")
        for key, kind in (("source", str), ("environment", dict), ("state", list),
                          ("example", dict), ("data", str)):
            if not isinstance(body.get(key), kind):
                raise InvalidInput(f"{key} must be a {kind.__name__}", field=key)
        spec = {  # what the content address covers, with the pickled state
            "source": body["source"],
            "inputs": check_fields(body.get("inputs", []), "inputs"),
            "outputs": check_fields(body.get("outputs", []), "outputs"),
            "environment": body["environment"],
        }
        extra = {"name": body["name"], "state": body["state"], "example": body["example"]}
        # A model can weigh hundreds of MB: decode, hash and write off the event loop.
        meta, state = await asyncio.to_thread(self._write_checkpoint, spec, extra, body["data"])
        if not self.store.checkpoint_dir(meta["id"]).exists():  # deleted meanwhile
            await asyncio.to_thread(self.store.write_checkpoint, meta, state)
        return self.store.add_checkpoint(meta)

    def _write_checkpoint(self, spec: dict[str, Any], extra: dict[str, Any], data: str
                          ) -> tuple[dict[str, Any], bytes]:
        try:
            state = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise InvalidInput("data must be base64", field="data") from None
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode() + state).hexdigest()
        meta = {"id": digest[:16], "name": extra["name"], **spec, **extra}
        self.store.write_checkpoint(meta, state)
        return meta, state

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.store.checkpoints()

    def checkpoint(self, ref: str) -> dict[str, Any]:
        return self.store.checkpoint(ref)

    def delete_checkpoint(self, ref: str) -> list[dict[str, Any]]:
        return self.store.delete_checkpoint(ref)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - checkpoints are immutable
    def _checkpoint_meta(self, checkpoint_id: str) -> dict[str, Any]:
        path = self.store.checkpoint_dir(checkpoint_id) / "checkpoint.json"
        return json.loads(path.read_text())

    @functools.lru_cache(maxsize=256)  # noqa: B019 - checkpoints are immutable
    def _input_check(self, checkpoint_id: str) -> InputCheck:
        return InputCheck(self._checkpoint_meta(checkpoint_id)["inputs"])

    def examples(self, kind: str, name: str) -> dict[str, Any]:
        """Ready-to-paste calls of a node or alias, with the input the notebook had at pin
        time; the key is left as a shell variable (it is shown once, at creation)."""
        if kind == "node":
            if self._node(name).from_image:
                raise Conflict(f"node {name!r} runs an image: it has no checkpoint to give "
                               "examples of", field="node")
        elif name not in self._aliases():
            raise NotFound(f"no alias {name!r}", field="alias")
        described = self.describe(kind, name)
        if described is None:
            raise Conflict(f"alias {name!r} sends traffic to no node", field="alias")
        checkpoint, public = described
        example = (checkpoint.get("example") or {}).get("input")
        base = f"{self.gateway_url}/v1/{kind}s/{name}"
        key = None if public else f"${kind.upper()}_KEY"
        node = checkpoint["node"]
        typed = self.grpc.example(node, example or {})
        return {
            "checkpoint": checkpoint["ref"],
            "input": example,
            "endpoint": f"{base}:execute",
            "openapi": f"{base}/openapi.json",
            "docs": f"{base}/docs",
            "proto": f"{self.gateway_url}/v1/nodes/{node}.proto",
            "curl": render.curl_example(f"{base}:execute", key, example),
            "grpcurl": typed and render.grpcurl_example(
                self.gateway_grpc_address, *typed, key, None if kind == "node" else name),
        }

    def describe(self, kind: str, name: str) -> tuple[dict[str, Any], bool] | None:
        """The checkpoint a node serves (for an alias: its heaviest node's, named in "node"),
        and whether it is public: what its API document is made of."""
        public = False
        if kind == "alias":
            alias = self.routes.aliases.get(name)
            if alias is None or not alias.weights:
                return None
            name, public = alias.weights[0][0], alias.public
        node = self.supervisor.nodes.get(name)
        if node is None or node.from_image:
            return None
        return ({**self._checkpoint_meta(node.checkpoint_id), "ref": node.checkpoint,
                 "node": node.name}, public)

    # nodes -----------------------------------------------------------------------------------

    async def create_node(self, body: Any) -> tuple[dict[str, Any], str]:
        """Create a node from a checkpoint or a Docker image; return it and its key (shown
        only here). Nothing of it exists until every setting has been checked."""
        body = body_object(body)
        name = check_name(body.get("name"), "name")
        self._check_new(name)
        runtime = body.get("runtime", "docker" if "image" in body else "process")
        if runtime not in RUNTIMES:
            raise InvalidInput(f"runtime must be one of {', '.join(RUNTIMES)}", field="runtime")
        key = new_key()
        checkpoint = None
        if "image" in body:
            node = docker_nodes.image_node(name, runtime, body, hash_key(key))
        else:
            checkpoint = self._checkpoint_ref(body.get("checkpoint"))
            node = Node(name=name, checkpoint_id=checkpoint["id"], checkpoint=_ref(checkpoint),
                        runtime=runtime, key_hash=hash_key(key))
        secrets = docker_nodes.configure(node, body, self.configs, None)
        if runtime == "docker":
            await docker_nodes.check_node(self.docker, node, secrets or {}, checkpoint)
            self._check_new(name)  # created meanwhile?
        if secrets is not None:
            self.store.save_secrets(name, secrets)
        self.store.save_node(node)
        self.supervisor.add_node(node, is_new=True)
        return self.node(name), key

    def _check_new(self, name: str) -> None:
        if name in self.supervisor.nodes:
            raise Conflict(f"node {name!r} exists already", field="name")

    def _checkpoint_ref(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str):
            raise InvalidInput("checkpoint must be NAME or NAME@VERSION", field="checkpoint")
        try:
            return self.store.checkpoint(ref)
        except NotFound as exc:
            raise InvalidInput(exc.message, field="checkpoint") from None

    def nodes(self) -> list[dict[str, Any]]:
        return [self.node(name) for name in self.supervisor.nodes]

    def _node(self, name: str) -> Node:
        node = self.supervisor.nodes.get(name)
        if node is None:
            raise NotFound(f"no node {name!r}", field="node")
        return node

    def node(self, name: str) -> dict[str, Any]:
        node = self._node(name)
        instances = list(self.supervisor.instances[name].values())
        return {
            **node.to_json(),
            "status": node_status(node, instances).value,
            "endpoint": f"{self.gateway_url}/v1/nodes/{name}" + (
                "/" if node.from_image else ":execute"),
            "instances": [i.to_json() for i in instances],
        }

    def update_node(self, name: str, body: Any) -> dict[str, Any]:
        """Change a node's settings; a new checkpoint or env rolls its instances one by one."""
        node = self._node(name)
        body = body_object(body)
        if "name" in body or "runtime" in body:
            field = "name" if "name" in body else "runtime"
            raise InvalidInput(f"{field} cannot be changed on a node", field=field)
        if "checkpoint" in body and node.from_image:
            raise InvalidInput("a Docker-image node has no checkpoint", field="checkpoint")
        checkpoint = self._checkpoint_ref(body["checkpoint"]) if "checkpoint" in body else None
        secrets = docker_nodes.configure(node, body, self.configs, self.store.secrets(name))
        if secrets is not None:
            self.store.save_secrets(name, secrets)
        if checkpoint is not None:
            node.checkpoint_id, node.checkpoint = checkpoint["id"], _ref(checkpoint)
        self.supervisor.update_node(node)
        return self.node(name)

    def suspend_node(self, name: str, suspended: bool) -> dict[str, Any]:
        """Suspend: stop every instance, keep the node; resume: back to its minimum."""
        node = self._node(name)
        node.suspended = suspended
        self.supervisor.update_node(node)
        return self.node(name)

    async def delete_node(self, name: str) -> None:
        self._node(name)
        for alias in self.store.aliases():
            if alias.nodes.get(name) or (alias.shadow and alias.shadow["node"] == name):
                raise Conflict(f"alias {alias.name!r} routes to node {name!r}: re-point it first",
                               field="node")
        await self.supervisor.delete_node(name)
        self.gateway.metrics.forget(node=name)

    # aliases -----------------------------------------------------------------------------------

    def set_alias(self, name: Any, body: Any, create_only: bool = False
                  ) -> tuple[dict[str, Any], str | None, bool]:
        """Create or re-point an alias in one step: the alias, its key when one was made,
        and whether it was created."""
        body = {**body_object(body), "name": name}
        previous = self._aliases().get(name)
        if previous is not None and create_only:
            raise Conflict(f"alias {name!r} exists already: PUT /aliases/{name} re-points it",
                           field="name")
        serving = {
            node_name for node_name, node in self.supervisor.nodes.items()
            if self.supervisor.node_statuses.get(node_name) is NodeStatus.HEALTHY
            and not node.suspended and self.routes.nodes[node_name].backends
        }
        alias = alias_settings(body, self.supervisor.nodes, serving, previous)
        key = None
        if not alias.public and not alias.key_hash:
            key = new_key()
            alias.key_hash = hash_key(key)
        self.store.save_alias(alias)
        self.routes.set_alias(alias.name, alias.key_hash, alias.public, alias.nodes,
                              alias.shadow, alias.sticky)
        return self._alias_json(alias), key, previous is None

    def _aliases(self) -> dict[str, Alias]:
        return {a.name: a for a in self.store.aliases()}

    def aliases(self) -> list[dict[str, Any]]:
        return [self._alias_json(a) for a in self.store.aliases()]

    def alias(self, name: str) -> dict[str, Any]:
        alias = self._aliases().get(name)
        if alias is None:
            raise NotFound(f"no alias {name!r}", field="alias")
        return self._alias_json(alias)

    def _alias_json(self, alias: Alias) -> dict[str, Any]:
        statuses = self.supervisor.node_statuses
        return {
            **alias.to_json(),
            "endpoint": f"{self.gateway_url}/v1/aliases/{alias.name}:execute",
            "routing": [{"node": n, "weight": w, "status": statuses[n].value if n in statuses
                         else None} for n, w in alias.nodes.items()],
        }

    def delete_alias(self, name: str) -> None:
        self.alias(name)
        self.store.remove_alias(name)
        self.routes.aliases.pop(name, None)
        self.gateway.metrics.forget(alias=name)

    def shadow(self, name: str) -> dict[str, Any]:
        """How the alias's shadow node answered, beside the primary answers."""
        alias = self.alias(name)
        route = self.routes.aliases[name]
        return {"alias": name, "shadow": alias["shadow"], **route.shadow_record.to_json()}

    def instances(self, name: str) -> list[dict[str, Any]]:
        return self.node(name)["instances"]

    async def logs(self, name: str, instance: str | None = None, tail_bytes: int = 64 * 1024,
                   request_id: str | None = None) -> list[dict[str, Any]]:
        """Each instance's log tail (or one request's lines): running instances, then the
        last few that were removed."""
        result = []
        for item, removed in self._log_instances(name, instance):
            text = await asyncio.to_thread(self.runtime.logs, item, tail_bytes, request_id)
            result.append({"instance": item.id, "status": item.status.value, "removed": removed,
                           "log": text})
        return result

    def _log_instances(self, name: str, instance: str | None) -> list[tuple[Instance, bool]]:
        self._node(name)
        running = [(i, False) for i in self.supervisor.instances[name].values()]
        removed = [(i, True) for i in self.store.instances(name, removed=True)[-5:]]
        chosen = [item for item in running + removed if instance in (None, item[0].id)]
        if instance is not None and not chosen:
            raise NotFound(f"node {name!r} has no instance {instance!r}", field="instance")
        return chosen

    async def follow_logs(self, name: str, instance: str | None = None, tail_bytes: int = 0,
                          request_id: str | None = None, poll_s: float = 0.2
                          ) -> AsyncIterator[dict[str, Any] | None]:
        """The end of each log (`tail_bytes`), then new lines as they are written, as
        `{"instance", "log"}` (None after a poll that found none), until the node is deleted
        or the service stops; instances that start meanwhile are followed from their start."""
        chosen = self._log_instances(name, instance)
        followers = {item.id: Follower(item.log_path) for item, _ in chosen if item.log_path}
        try:
            for item in await self.logs(name, instance, tail_bytes, request_id):
                if item["log"] and item["instance"] in followers:
                    yield {"instance": item["instance"], "log": item["log"]}
            while self.running and name in self.supervisor.nodes:
                for item in list(self.supervisor.instances.get(name, {}).values()):
                    if item.id not in followers and item.log_path and instance in (None, item.id):
                        followers[item.id] = Follower(item.log_path, from_start=True)
                for instance_id, follower in followers.items():
                    lines = [line for line in follower.read()
                             if request_id is None or has_request_id(line, request_id)]
                    if lines:
                        yield {"instance": instance_id, "log": "\n".join(lines) + "\n"}
                yield None
                await asyncio.sleep(poll_s)
        finally:
            for follower in followers.values():
                follower.close()

    async def execute(self, name: str, body: bytes) -> Response:
        """Call the node as the gateway would, for an already authenticated user; the answer
        carries the request id its lines are logged with."""
        if self._node(name).from_image:
            raise Conflict(f"node {name!r} runs an image: call it through the gateway with "
                           f"x-node-id: {name}", field="node")
        route = self.routes.nodes[name]
        request_id = new_request_id()
        answer = execute(self.routes, route, body, self.request_timeout_s, request_id=request_id)
        response = await self.recorder.watch(route, body, answer, request_id)
        return Response(response.status, response.body,
                        {**(response.headers or {}), "x-request-id": request_id})

    async def requests(self, name: str, last: int = 100) -> dict[str, Any]:
        """The node's captured requests, newest last."""
        node = self._node(name)
        await self.recorder.flush()
        return captured(self.store, node, last)

    async def metrics(self, name: str) -> str:
        """The node's instances' own metrics, labelled with node_id and instance_id."""
        self._node(name)
        metrics = self.gateway.metrics
        return metrics.text(await metrics.instances(self.routes, name))

    async def events(self, since: int = 0, node: str | None = None, wait_s: float = 0.0
                     ) -> list[dict[str, Any]]:
        """Events after `since`; with `wait_s`, wait that long for the next one."""
        events = self.store.events(node=node, since=since)
        if events or wait_s <= 0:
            return events
        self._events_changed.clear()
        try:
            await asyncio.wait_for(self._events_changed.wait(), wait_s)
        except TimeoutError:
            return []
        return self.store.events(node=node, since=since)


def _ref(checkpoint: dict[str, Any]) -> str:
    """The checkpoint as the user names it: NAME@VERSION."""
    return f"{checkpoint['name']}@{checkpoint['version']}"
