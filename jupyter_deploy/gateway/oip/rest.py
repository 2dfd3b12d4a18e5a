"""The Open Inference Protocol's REST form on the gateway's HTTP port, with Triton's binary
tensor data extension.

    GET  /v2                    server metadata
    GET  /v2/health/live|ready  the gateway is up
    GET  /v2/models/{model}[/versions/{v}]        model metadata (no key, like the docs pages)
    GET  /v2/models/{model}[/versions/{v}]/ready  200 when an instance would take a request
    POST /v2/models/{model}[/versions/{v}]/infer  tensors in, tensors out (with the key)

A model is a checkpoint node or an alias. Errors are `{"error": "..."}`. Binary data: the
request's first `Inference-Header-Content-Length` bytes are the JSON, the rest the inputs
whose `parameters.binary_data_size` say so, in order; outputs asked for with
`parameters.binary_data` (or the request's `binary_data_output`) come the same way back.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...http.messages import Request, Response
from ..routing import MAX_BYTES
from .convert import json_data
from .models import Model, Models, OipError
from .tensors import DTYPE_OF, Tensor, TensorError, flat, pack

if TYPE_CHECKING:
    from ..app import Gateway, Page

MODEL_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?\Z")
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data"]
JSON = {"Content-Type": "application/json"}


def server_metadata() -> dict[str, Any]:
    """What `GET /v2` answers (and ServerMetadata over gRPC)."""
    return {"name": "jupyter_deploy", "version": __version__, "extensions": EXTENSIONS}


class OipRest:
    """Routes `/v2...` from the headers (the key is checked before the body is read)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.models = Models(gateway)

    def check(self, request: Request) -> Page | Response:
        """What answers `request`: a page to make, or an error now."""
        try:
            return self._check(request)
        except OipError as exc:
            return exc.response()

    def _check(self, request: Request) -> Page | Response:
        path, method = request.path.rstrip("/") or "/", request.method
        if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            _only(method, "GET")
            body = server_metadata() if path == "/v2" else {path.rsplit("/", 1)[1]: True}
            return _json(200, body)
        match = MODEL_PATH.match(path)
        if match is None:
            raise OipError(404, f"no endpoint {method} {path}")
        name, version, verb = match.groups()
        if verb == "/infer":
            _only(method, "POST")
        else:
            _only(method, "GET")
        model = self.models.model(name, version or "")
        if verb is None:
            return _json(200, self.models.metadata(model))
        if verb == "/ready":
            if self.models.ready(model):
                return _json(200, {"name": name, "ready": True})
            raise OipError(503, f"model {name!r} has no instance ready", {"ready": False},
                           {"Retry-After": "1"})
        refused = self.models.refused(model, request.headers.get("authorization"))
        if refused is not None:
            self.gateway.metrics.observe(model.target, path, refused.response(), None, "oip")
            raise refused
        return partial(self._infer, model)

    async def _infer(self, model: Model, request: Request) -> Response:
        try:
            parsed = _parse(request)
            wanted = self.models.wanted(model, [o["name"] for o in parsed["outputs"]])
            tensors, headers = await self.models.infer(model, parsed["tensors"], wanted,
                                                       request, request.path)
            response = _answer(model, parsed, tensors, self.models.version_of(model, headers))
        except OipError as exc:
            return exc.response()
        extra = {k: v for k, v in headers.items() if k in ("x-instance-id", "x-node-id")}
        response.headers = {**(response.headers or {}), **extra}
        if len(response.body) > MAX_BYTES:
            return OipError(502, f"the answer is {len(response.body)} bytes, more than the "
                            f"{MAX_BYTES} allowed").response()
        return response


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise OipError(405, f"use {allowed} here", headers={"Allow": allowed})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status, json.dumps(body).encode(), JSON)


def _parse(request: Request) -> dict[str, Any]:
    """The request's tensors, outputs asked for, id and parameters (OipError 400)."""
    body, binary = request.body, b""
    length = request.headers.get(HEADER_LENGTH)
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise OipError(400, f"{HEADER_LENGTH} must be the length of the JSON part")
        body, binary = body[:int(length)], body[int(length):]
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise OipError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise OipError(400, 'the body must be {"inputs": [...]}')
    outputs = payload.get("outputs") or []
    parameters = payload.get("parameters") or {}
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise OipError(400, 'outputs must be a list of {"name": ...}')
    if not isinstance(parameters, dict):
        raise OipError(400, "parameters must be an object")
    tensors, at = [], 0
    for item in payload["inputs"]:
        tensor, at = _input(item, binary, at)
        tensors.append(tensor)
    if at != len(binary):
        raise OipError(400, f"{len(binary) - at} bytes of binary data belong to no input")
    return {"tensors": tensors, "outputs": outputs, "parameters": parameters,
            "id": payload.get("id")}


def _input(item: Any, binary: bytes, at: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise OipError(400, 'each input must be {"name", "shape", "datatype", "data"}')
    name, shape, datatype = item["name"], item.get("shape"), item.get("datatype")
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise OipError(400, f"input {name!r}: shape must be a list of integers")
    if not isinstance(datatype, str):
        raise OipError(400, f"input {name!r}: datatype must be a string")
    parameters = item.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or at + size > len(binary):
            raise OipError(400, f"input {name!r}: binary_data_size goes past the binary data")
        return Tensor(name, datatype, shape, raw=binary[at:at + size]), at + size
    if "data" not in item:
        raise OipError(400, f"input {name!r} has no data")
    try:
        if datatype == "BYTES":
            return Tensor(name, datatype, shape, values=flat(item["data"])), at
        if datatype not in DTYPE_OF:
            raise OipError(400, f"input {name!r}: unknown datatype {datatype!r}")
        return Tensor(name, datatype, shape, raw=pack(datatype, flat(item["data"]))), at
    except TensorError as exc:
        raise OipError(400, f"input {name!r}: {exc}") from None


def _binary_wanted(parsed: dict[str, Any], name: str) -> bool:
    default = bool(parsed["parameters"].get("binary_data_output", False))
    for output in parsed["outputs"]:
        if output["name"] == name:
            return bool((output.get("parameters") or {}).get("binary_data", default))
    return default


def _answer(model: Model, parsed: dict[str, Any], tensors: list[Tensor], version: str
            ) -> Response:
    """The infer answer: JSON, or JSON then the binary outputs."""
    outputs, chunks = [], []
    for tensor in tensors:
        out: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                               "shape": tensor.shape}
        binary = _binary_wanted(parsed, tensor.name)
        if not binary:
            try:
                out["data"] = json_data(tensor)
            except UnicodeDecodeError:  # bytes that are not text go binary all the same
                binary = True
        if binary:
            raw = tensor.as_raw()
            out["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        outputs.append(out)
    body: dict[str, Any] = {"model_name": model.name, "model_version": version,
                            "outputs": outputs}
    if parsed["id"] is not None:
        body["id"] = parsed["id"]
    head = json.dumps(body).encode()
    if not chunks:
        return Response(200, head, dict(JSON))
    return Response(200, b"".join([head, *chunks]),
                    {"Content-Type": "application/octet-stream",
                     "Inference-Header-Content-Length": str(len(head))})

