"""What a node or alias is made of for its callers: the checkpoint behind its API document,
and ready-to-paste curl and grpcurl calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..client import render
from ..gateway.grpc.server import GrpcGateway
from ..gateway.oip import examples as oip
from ..gateway.openapi import base_path
from ..gateway.routing import Routes
from ..gateway.state import served
from ..models import Conflict, NotFound
from ..supervisor.loop import Supervisor
from .aliases import Aliases
from .checkpoints import Checkpoints
from .nodes import Nodes


class Examples:
    """The checkpoint a node or alias serves, and calls of it to paste."""

    def __init__(self, nodes: Nodes, aliases: Aliases, checkpoints: Checkpoints,
                 supervisor: Supervisor, routes: Routes, grpc: GrpcGateway,
                 gateway_url: Callable[[], str], grpc_address: Callable[[], str]) -> None:
        self.nodes = nodes
        self.aliases = aliases
        self.checkpoints = checkpoints
        self.supervisor = supervisor
        self.routes = routes
        self.grpc = grpc
        self.gateway_url = gateway_url
        self.grpc_address = grpc_address

    def examples(self, kind: str, name: str) -> dict[str, Any]:
        """Ready-to-paste calls of a node or alias, with the input the notebook had at pin
        time; the key is left as a shell variable (it is shown once, at creation)."""
        if kind == "node":
            if self.nodes.find(name).from_image:
                raise Conflict(f"node {name!r} runs an image: it has no checkpoint to give "
                               "examples of", field="node")
        elif not self.aliases.has(name):
            raise NotFound(f"no alias {name!r}", field="alias")
        described = self.describe(kind, name)
        if described is None:
            raise Conflict(f"alias {name!r} sends traffic to no node", field="alias")
        checkpoint, public = described
        example = (checkpoint.get("example") or {}).get("input")
        url = self.gateway_url()
        base = url + base_path(kind, name)
        key = None if public else f"${kind.upper()}_KEY"
        node = checkpoint["node"]
        typed = self.grpc.example(node, example or {})
        return {
            "checkpoint": checkpoint["ref"],
            "input": example,
            "endpoint": f"{base}:execute",
            "openapi": f"{base}/openapi.json",
            "docs": f"{base}/docs",
            "proto": f"{url}/v1/nodes/{node}.proto",
            "curl": render.curl_example(f"{base}:execute", key, example),
            "grpcurl": typed and render.grpcurl_example(
                self.grpc_address(), *typed, key, None if kind == "node" else name),
            **self.oip_examples(name, checkpoint, example or {}, key),
        }

    def oip_examples(self, model: str, checkpoint: dict[str, Any], example: dict[str, Any],
                     key: str | None) -> dict[str, Any]:
        """The same call in the Open Inference Protocol: its request, curl, tritonclient."""
        url = f"{self.gateway_url()}/v2/models/{model}/infer"
        body = oip.request(checkpoint["inputs"], example)
        address = self.gateway_url().split("//", 1)[-1]
        return {"oip_infer": url, "oip_request": body,
                "oip_curl": body and oip.curl(url, body, key),
                "tritonclient": body and oip.tritonclient(address, model, body, key)}

    def describe(self, kind: str, name: str) -> tuple[dict[str, Any], bool] | None:
        """The checkpoint a node serves (for an alias: its heaviest node's, named in "node"),
        and whether it is public: what its API document is made of."""
        return served(self.routes, self.supervisor.nodes, self.checkpoints.meta, kind, name)
