"""Nodes: creating, reading, changing, suspending and deleting them, and calling them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..gateway.app import Gateway
from ..gateway.capture import Recorder
from ..gateway.execute import execute
from ..gateway.ids import new_request_id
from ..gateway.routing import Routes, hash_key, new_key
from ..http.messages import Response
from ..models import Conflict, InvalidInput, Node, NotFound, node_status
from ..runtimes.base import Runtimes
from ..store.projects import DEFAULT_PROJECT
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor
from . import docker_nodes
from .checkpoints import Checkpoints, ref
from .projects import node_key
from .validation.names import body_object, check_name
from .validation.nodes import (
    check_batch,
    check_update,
    configure,
    image_node,
    new_node_runtime,
)


class Nodes:
    """The node verbs of the control API, over the store and the supervisor."""

    def __init__(self, store: Store, supervisor: Supervisor, routes: Routes, gateway: Gateway,
                 recorder: Recorder, runtimes: Runtimes, checkpoints: Checkpoints,
                 configs: dict[str, dict[str, Any]], gateway_url: Callable[[], str],
                 request_timeout_s: float) -> None:
        self.store = store
        self.supervisor = supervisor
        self.routes = routes
        self.gateway = gateway
        self.recorder = recorder
        self.runtimes = runtimes
        self.checkpoints = checkpoints
        self.configs = configs
        self.gateway_url = gateway_url
        self.request_timeout_s = request_timeout_s

    async def create(self, body: Any, project: str = DEFAULT_PROJECT,
                     admit: Callable[[Node], None] | None = None) -> tuple[dict[str, Any], str]:
        """Create a node from a checkpoint or a Docker image; return it and its key (shown
        only here). Nothing of it exists until every setting has been checked, `admit` (the
        project's quotas) last."""
        body = body_object(body)
        name = node_key(project, check_name(body.get("name"), "name"))
        self._check_new(name)
        runtime = new_node_runtime(body, self.runtimes.default)
        key = new_key()
        checkpoint = None
        if "image" in body:
            node = image_node(name, runtime, body, hash_key(key))
        else:
            checkpoint = self._checkpoint_ref(body.get("checkpoint"))
            node = Node(name=name, checkpoint_id=checkpoint["id"], checkpoint=ref(checkpoint),
                        runtime=runtime, key_hash=hash_key(key))
        check_batch(node, body, checkpoint)
        secrets = configure(node, body, self.configs, None)
        if runtime in ("docker", "swarm"):
            await docker_nodes.check_node(self.runtimes, node, secrets or {}, checkpoint)
            self._check_new(name)  # created meanwhile?
        if admit is not None:
            admit(node)
        if secrets is not None:
            self.store.save_secrets(name, secrets)
        self.store.save_node(node)
        self.supervisor.add_node(node, is_new=True)
        return self.get(name), key

    def _check_new(self, name: str) -> None:
        if name in self.supervisor.nodes:
            raise Conflict(f"node {name!r} exists already", field="name")

    def _checkpoint_ref(self, reference: Any) -> dict[str, Any]:
        if not isinstance(reference, str):
            raise InvalidInput("checkpoint must be NAME or NAME@VERSION", field="checkpoint")
        try:
            return self.checkpoints.get(reference)
        except NotFound as exc:
            raise InvalidInput(exc.message, field="checkpoint") from None

    def find(self, name: str) -> Node:
        """The node named `name`, or NotFound."""
        node = self.supervisor.nodes.get(name)
        if node is None:
            raise NotFound(f"no node {name!r}", field="node")
        return node

    def all(self) -> list[dict[str, Any]]:
        """Every node, as `get` shows it."""
        return [self.get(name) for name in self.supervisor.nodes]

    def get(self, name: str) -> dict[str, Any]:
        """The node with its status, endpoint and instances."""
        node = self.find(name)
        instances = list(self.supervisor.instances[name].values())
        return {
            **node.to_json(),
            "status": node_status(node, instances).value,
            "endpoint": f"{self.gateway_url()}/v1/nodes/{name}" + (
                "/" if node.from_image else ":execute"),
            "instances": [i.to_json() for i in instances],
        }

    def update(self, name: str, body: Any) -> dict[str, Any]:
        """Change a node's settings; a new checkpoint or env rolls its instances one by one."""
        node = self.find(name)
        body = body_object(body)
        check_update(node, body)
        checkpoint = self._checkpoint_ref(body["checkpoint"]) if "checkpoint" in body else None
        check_batch(node, body, checkpoint or (None if node.from_image else
                                               self.checkpoints.meta(node.checkpoint_id)))
        secrets = configure(node, body, self.configs, self.store.secrets(name))
        if secrets is not None:
            self.store.save_secrets(name, secrets)
        if checkpoint is not None:
            node.checkpoint_id, node.checkpoint = checkpoint["id"], ref(checkpoint)
        self.supervisor.update_node(node)
        return self.get(name)

    def suspend(self, name: str, suspended: bool) -> dict[str, Any]:
        """Suspend: stop every instance, keep the node; resume: back to its minimum."""
        node = self.find(name)
        node.suspended = suspended
        self.supervisor.update_node(node)
        return self.get(name)

    async def delete(self, name: str) -> None:
        """Delete a node that no alias routes to; its instances drain first."""
        self.find(name)
        for alias in self.store.aliases():
            if alias.nodes.get(name) or (alias.shadow and alias.shadow["node"] == name):
                raise Conflict(f"alias {alias.name!r} routes to node {name!r}: re-point it first",
                               field="node")
        await self.supervisor.delete_node(name)
        self.gateway.metrics.forget(node=name)

    async def execute(self, name: str, body: bytes) -> Response:
        """Call the node as the gateway would, for an already authenticated user; the answer
        carries the request id its lines are logged with."""
        if self.find(name).from_image:
            raise Conflict(f"node {name!r} runs an image: call it through the gateway with "
                           f"x-node-id: {name}", field="node")
        route = self.routes.nodes[name]
        request_id = new_request_id()
        answer = execute(self.routes, route, body, self.request_timeout_s, request_id=request_id)
        response = await self.recorder.watch(route, body, answer, request_id)
        return Response(response.status, response.body,
                        {**(response.headers or {}), "x-request-id": request_id})
