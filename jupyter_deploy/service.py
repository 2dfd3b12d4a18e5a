"""The deploy service: store + supervisor + gateway, with no jupyter_server dependency.

The server extension hosts it inside a Jupyter server; `jupyter deploy serve` hosts the same
object standalone. Every control-API verb is a method here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from .gateway.app import Gateway, execute
from .gateway.routing import Routes, hash_key, new_key
from .http11 import Response
from .models import (
    Conflict, HealthCheck, InvalidInput, Node, NotFound, check_name, node_status,
)
from .runtimes.process import ProcessRuntime
from .store import Store
from .supervisor.loop import Supervisor
from .types import check_fields

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_INSTANCES = 64
RUNTIMES = ("process",)


class DeployService:
    def __init__(self, state_dir: str | Path, gateway_host: str = "127.0.0.1",
                 gateway_port: int = 8890, request_timeout_s: float = 15.0,
                 log: logging.Logger | None = None, **supervisor_options: Any) -> None:
        self.state_dir = Path(state_dir)
        self.gateway_host = gateway_host
        self.gateway_port = gateway_port
        self.request_timeout_s = request_timeout_s
        self.log = log or logging.getLogger("jupyter_deploy")
        self.supervisor_options = supervisor_options
        self._events_changed = asyncio.Event()
        self.running = False
        self.start_error = "it has not started yet"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    async def start(self) -> None:
        self.store = Store(self.state_dir)
        self.routes = Routes()
        self.runtime = ProcessRuntime(self.state_dir / "logs", busy_limit_s=self.request_timeout_s)
        self.gateway = Gateway(self.routes, request_timeout_s=self.request_timeout_s)
        self.supervisor = Supervisor(self.store, self.runtime, self.routes, log=self.log,
                                     drain_timeout_s=self.request_timeout_s,
                                     **self.supervisor_options)
        try:
            self.gateway_port = await self.gateway.listen(self.gateway_host, self.gateway_port)
            self.supervisor.listeners.append(lambda event: self._events_changed.set())
            for node in self.store.nodes():
                for instance in self.store.instances(node.name):  # they ended with us
                    self.store.save_instance(instance, removed=True)
                inputs = self._checkpoint(node.checkpoint_id)["inputs"]
                self.supervisor.add_node(node, inputs, is_new=False)
            await self.supervisor.start()
        except BaseException:  # leave nothing half-started: the port, the state lock
            await self.gateway.stop()
            self.store.close()
            raise
        self.running = True
        self.log.info("jupyter_deploy: state in %s, gateway on %s", self.state_dir,
                      self.gateway_url)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self.start_error = "it has stopped"
        await self.supervisor.stop()
        await self.gateway.stop()
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

    def _checkpoint(self, checkpoint_id: str) -> dict[str, Any]:
        path = self.store.checkpoint_dir(checkpoint_id) / "checkpoint.json"
        return json.loads(path.read_text())

    # nodes -----------------------------------------------------------------------------------

    async def create_node(self, body: Any) -> tuple[dict[str, Any], str]:
        """Create a node from a checkpoint; return it and its key (shown only here)."""
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        name = check_name(body.get("name"), "name")
        if name in self.supervisor.nodes:
            raise Conflict(f"node {name!r} exists already", field="name")
        if not isinstance(body.get("checkpoint"), str):
            raise InvalidInput("checkpoint must be NAME or NAME@VERSION", field="checkpoint")
        try:
            checkpoint = self.store.checkpoint(body["checkpoint"])
        except NotFound as exc:
            raise InvalidInput(exc.message, field="checkpoint") from None
        runtime = body.get("runtime", "process")
        if runtime not in RUNTIMES:
            raise InvalidInput(f"runtime must be one of {', '.join(RUNTIMES)}", field="runtime")
        key = new_key()
        node = Node(
            name=name,
            checkpoint_id=checkpoint["id"],
            checkpoint=f"{checkpoint['name']}@{checkpoint['version']}",
            runtime=runtime,
            env=_env(body.get("env", {})),
            health=_health(body.get("health", {})),
            key_hash=hash_key(key),
        )
        node.min, node.max = _instance_range(body, 1, 1)
        self.store.save_node(node)
        self.supervisor.add_node(node, checkpoint["inputs"], is_new=True)
        return self.node(name), key

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
            "endpoint": f"{self.gateway_url}/v1/nodes/{name}:execute",
            "instances": [i.to_json() for i in instances],
        }

    def update_node(self, name: str, body: Any) -> dict[str, Any]:
        """Change a node's instance range (and nothing else, for now)."""
        node = self._node(name)
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        unknown = set(body) - {"min", "max"}
        if unknown:
            field = sorted(unknown)[0]
            raise InvalidInput(f"{field} cannot be changed on a node", field=field)
        node.min, node.max = _instance_range(body, node.min, node.max)
        self.supervisor.update_node(node)
        return self.node(name)

    async def delete_node(self, name: str) -> None:
        self._node(name)
        await self.supervisor.delete_node(name)

    def instances(self, name: str) -> list[dict[str, Any]]:
        return self.node(name)["instances"]

    def logs(self, name: str, instance: str | None = None, tail_bytes: int = 64 * 1024
             ) -> list[dict[str, Any]]:
        """Each instance's log tail: running ones, then the last few that were removed."""
        self._node(name)
        running = list(self.supervisor.instances[name].values())
        removed = self.store.instances(name, removed=True)[-5:]
        result = []
        for item in running + removed:
            if instance is None or item.id == instance:
                result.append({"instance": item.id, "status": item.status.value,
                               "removed": item in removed,
                               "log": self.runtime.logs(item, tail_bytes)})
        if instance is not None and not result:
            raise NotFound(f"node {name!r} has no instance {instance!r}", field="instance")
        return result

    async def execute(self, name: str, body: bytes) -> Response:
        """Call the node as the gateway would, for an already authenticated user."""
        self._node(name)
        return await execute(self.routes, self.routes.nodes[name], body, self.request_timeout_s)

    async def events(self, since: int = 0, node: str | None = None, wait_s: float = 0.0
                     ) -> list[dict[str, Any]]:
        """Events after `since`; with `wait_s`, wait that long for the next one."""
        events = self.store.events(node=node, since=since)
        if events or wait_s <= 0:
            return events
        self._events_changed.clear()
        try:
            await asyncio.wait_for(self._events_changed.wait(), wait_s)
        except asyncio.TimeoutError:
            return []
        return self.store.events(node=node, since=since)


def _instance_range(body: dict[str, Any], default_min: int, default_max: int) -> tuple[int, int]:
    low, high = body.get("min", default_min), body.get("max", default_max)
    for field, value in (("min", low), ("max", high)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INSTANCES:
            raise InvalidInput(f"{field} must be a whole number from 0 to {MAX_INSTANCES}",
                               field=field)
    if "max" not in body and "min" in body:
        high = max(high, low)
    if high < 1 or low > high:
        raise InvalidInput(f"the instance range {low}..{high} is empty: need 1 <= max and "
                           "min <= max", field="max")
    return low, high


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidInput("env must be an object of NAME: value", field="env")
    for name, item in value.items():
        if not ENV_NAME.match(name) or not isinstance(item, str):
            raise InvalidInput(f"env.{name}: names are identifiers, values strings",
                               field=f"env.{name}")
    return dict(value)


def _health(value: Any) -> HealthCheck:
    if not isinstance(value, dict):
        raise InvalidInput("health must be an object", field="health")
    health = HealthCheck()
    for name, item in value.items():
        if name not in HealthCheck.__dataclass_fields__:
            raise InvalidInput(f"health.{name} is not a health-check setting",
                               field=f"health.{name}")
        whole = name.endswith("threshold")
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0 or (
                whole and not isinstance(item, int)):
            raise InvalidInput(f"health.{name} must be a positive "
                               f"{'whole number' if whole else 'number'}", field=f"health.{name}")
        setattr(health, name, item)
    return health
