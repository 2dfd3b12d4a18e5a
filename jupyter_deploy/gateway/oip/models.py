"""Nodes and aliases as Open Inference Protocol models, and their one infer path.

A model is a checkpoint node or an alias (a node of the name wins). `versions/{v}` picks the
instances that serve checkpoint version v, while they are in balancing (during a roll, two
versions serve). An infer goes down the REST execute path of the gateway (`Gateway.execute`),
so keys, limits, retries, capture and request ids are those of the native API.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...http.messages import Request, Response
from ..auth import refusal
from ..routing import UPSTREAM_BYTES, AliasRoute, Route
from .convert import native_inputs, tensors_of
from .tensors import Spec, Tensor, TensorError, specs_of

if TYPE_CHECKING:
    from ..app import Gateway

# instance id -> the metadata of the checkpoint it runs ({"id", "version", "inputs", ...})
Served = Callable[[str], dict[str, dict[str, Any]]]
NATIVE_HEADERS = ("x-array-encoding", "authorization", "x-request-id")


class OipError(Exception):
    """An answer of the protocol's error form, `{"error": "..."}` (and `extra` fields)."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.extra, self.headers = extra or {}, headers

    def response(self) -> Response:
        """The REST answer."""
        body = json.dumps({"error": self.message, **self.extra}).encode()
        return Response(self.status, body, self.headers)


@dataclass
class Model:
    """What a request names: the node or alias, the version asked for, its tensors."""

    name: str
    kind: str  # node or alias
    target: Route | AliasRoute
    checkpoint: dict[str, Any]
    version: str  # the one asked for, or ""
    versions: list[str]
    inputs: list[Spec]
    outputs: list[Spec]

    @property
    def served_version(self) -> str:
        return self.version or str(self.checkpoint.get("version", ""))


class Models:
    """Resolves model names and runs infers, for the REST and the gRPC forms alike."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.served: Served = lambda node: {}
        self._specs: dict[str, tuple[list[Spec], list[Spec]]] = {}

    def specs(self, checkpoint: dict[str, Any]) -> tuple[list[Spec], list[Spec]]:
        """The input and output tensors of a checkpoint (kept: checkpoints are immutable)."""
        key = str(checkpoint.get("id") or json.dumps([checkpoint["inputs"],
                                                      checkpoint["outputs"]]))
        found = self._specs.get(key)
        if found is None:
            if len(self._specs) > 512:
                self._specs.clear()
            found = self._specs[key] = (specs_of(checkpoint["inputs"]),
                                        specs_of(checkpoint["outputs"]))
        return found

    def nodes_of(self, target: Route | AliasRoute) -> list[str]:
        return [n for n, _ in target.weights] if isinstance(target, AliasRoute) else [target.node]

    def by_version(self, target: Route | AliasRoute) -> dict[str, dict[str, Any]]:
        """The checkpoint versions its instances in balancing serve: version -> metadata."""
        out: dict[str, dict[str, Any]] = {}
        for node in self.nodes_of(target):
            route = self.gateway.routes.nodes.get(node)
            if route is None:
                continue
            served = self.served(node)
            for instance in route.backends:
                meta = served.get(instance)
                if meta is not None:
                    out.setdefault(str(meta["version"]), meta)
        return out

    def model(self, name: str, version: str = "") -> Model:
        """The node or alias `name`; OipError 404 if there is none, or if it does not serve
        `version`."""
        routes = self.gateway.routes
        target: Route | AliasRoute | None = routes.nodes.get(name)
        kind = "node"
        if target is None or isinstance(target, Route) and target.passthrough:
            target, kind = routes.aliases.get(name), "alias"
        described = self.gateway.describe(kind, name) if target is not None else None
        if target is None or described is None:
            raise OipError(404, f"unknown model {name!r}: no checkpoint node or alias of "
                           "that name")
        checkpoint = described[0]
        versions = self.by_version(target)
        if version:
            if version not in versions:
                raise OipError(404, f"model {name!r} has no version {version!r} being served "
                               f"(served: {', '.join(sorted(versions, key=_order)) or 'none'})")
            checkpoint = versions[version]
        listed = sorted(versions or {str(checkpoint.get("version", "")): checkpoint}, key=_order)
        inputs, outputs = self.specs(checkpoint)
        return Model(name, kind, target, checkpoint, version, listed, inputs, outputs)

    def ready(self, model: Model) -> bool:
        """Whether an instance (of the version asked for) would take a request now."""
        if model.version:
            return True  # by_version found one in balancing
        return any(route is not None and route.backends for route in (
            self.gateway.routes.nodes.get(n) for n in self.nodes_of(model.target)))

    def refused(self, model: Model, authorization: str | None) -> OipError | None:
        """The key check of the native API, answered in the protocol's form."""
        refused = refusal(model.target, model.kind, model.name, authorization)
        return None if refused is None else _converted(refused)

    def metadata(self, model: Model) -> dict[str, Any]:
        """The model metadata of the protocol."""
        return {"name": model.name, "versions": model.versions, "platform": "jupyter_deploy",
                "inputs": [s.metadata() for s in model.inputs],
                "outputs": [s.metadata() for s in model.outputs]}

    def wanted(self, model: Model, names: list[str] | None) -> list[Spec]:
        """The output tensors asked for (all that map, when none are named)."""
        if not names:
            return [s for s in model.outputs if s.form != "unmapped"]
        by_name = {s.name: s for s in model.outputs}
        specs = []
        for name in names:
            spec = by_name.get(name)
            if spec is None:
                raise OipError(400, f"unknown output {name!r} (the model's outputs: "
                               f"{', '.join(by_name) or 'none'})")
            if spec.form == "unmapped":
                raise OipError(400, f"output {name!r} is declared {spec.declared}, which has "
                               "no tensor form: call the native REST API for it")
            specs.append(spec)
        return specs

    async def infer(self, model: Model, tensors: list[Tensor], wanted: list[Spec],
                    request: Request, path: str, grpc: bool = False,
                    timeout_s: float | None = None) -> tuple[list[Tensor], dict[str, str]]:
        """Run the cell with the request's tensors; the output tensors asked for, and the
        headers of the native answer (the instance, and the node of an alias)."""
        started = time.perf_counter()
        try:
            body = json.dumps({"input": native_inputs(model.inputs, tensors)}).encode()
        except TensorError as exc:
            raise OipError(exc.status, str(exc)) from None
        headers = {k: v for k in NATIVE_HEADERS if (v := request.headers.get(k)) is not None}
        headers["x-array-encoding"] = "base64"
        target = self._versioned(model)
        timeout = self.gateway.request_timeout_s
        if timeout_s is not None:  # a gRPC deadline
            timeout = min(timeout, timeout_s)
        response = await self.gateway.execute(target, body, headers, timeout, request.id,
                                              UPSTREAM_BYTES)
        if isinstance(target, Route) and isinstance(model.target, AliasRoute):
            # a version of an alias ran on one of its nodes: say which, as aliases do
            response.headers = {**(response.headers or {}), "x-node-id": target.node}
        if not grpc:
            self.gateway.metrics.observe(model.target, path, response,
                                         time.perf_counter() - started, "oip")
        if response.status != 200:
            raise _converted(response)
        try:
            return tensors_of(wanted, json.loads(response.body)["output"]), response.headers or {}
        except TensorError as exc:
            raise OipError(exc.status, str(exc)) from None

    def version_of(self, model: Model, headers: dict[str, str]) -> str:
        """The checkpoint version of the instance that answered."""
        node = headers.get("x-node-id") or (model.name if model.kind == "node" else "")
        meta = self.served(node).get(headers.get("x-instance-id", "")) if node else None
        return str(meta["version"]) if meta else model.served_version

    def _versioned(self, model: Model) -> Route | AliasRoute:
        """The target, narrowed to the instances serving the version asked for."""
        if not model.version:
            return model.target
        for node in self.nodes_of(model.target):
            route = self.gateway.routes.nodes.get(node)
            if route is None:
                continue
            served = self.served(node)
            backends = {i: b for i, b in route.backends.items()
                        if str(served.get(i, {}).get("version")) == model.version}
            if backends:
                return dataclasses.replace(route, backends=backends, hold=False)
        return model.target


def _order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _converted(response: Response) -> OipError:
    """A native error answer in the protocol's form (422 is the protocol's 400)."""
    try:
        body = json.loads(response.body)
    except ValueError:
        body = {}
    status = 400 if response.status == 422 else response.status
    headers = {k: v for k, v in (response.headers or {}).items()
               if k in ("Retry-After", "WWW-Authenticate", "x-node-id", "x-instance-id")}
    if isinstance(body, dict) and "error_name" in body:  # the cell raised
        message = f"{body['error_name']}: {body.get('error_message', '')}"
        return OipError(status, message, {k: body[k] for k in (
            "error_name", "error_message", "traceback") if k in body}, headers)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message", f"HTTP {response.status}"))
        field = error.get("field")
        return OipError(status, message, {"field": field} if field else None, headers)
    return OipError(status, f"HTTP {response.status}", None, headers)
