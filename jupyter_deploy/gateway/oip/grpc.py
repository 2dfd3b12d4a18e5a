"""`inference.GRPCInferenceService` on the gateway's gRPC port: the same models, keys and
infer path as the REST form (`authorization: Bearer KEY` metadata), tensors in
`raw_input_contents` or the typed `contents`, outputs always in `raw_output_contents`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from ...errors import CELL_RAISED, grpc_name
from ...http.messages import Request
from ..ids import request_id
from ..routing import MAX_BYTES
from .models import Model, Models, OipError
from .proto import CLASSES, CONTENTS, METHODS, SERVICE
from .rest import server_metadata
from .tensors import DTYPE_OF, Tensor, TensorError, pack

if TYPE_CHECKING:
    from ..app import Gateway

PREFIX = f"/{SERVICE}/"
Behaviour = Callable[[Any, Any], Awaitable[Any]]


class OipGrpc:
    """The servicer: one handler per method, made once."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.models: Models = gateway.oip.models
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}
        for method in METHODS:
            behaviour: Behaviour = getattr(self, method)
            self.handlers[PREFIX + method] = grpc.unary_unary_rpc_method_handler(
                _aborting(behaviour),
                request_deserializer=CLASSES[f"{method}Request"].FromString,
                response_serializer=_serialize)

    def handler(self, method: str) -> grpc.RpcMethodHandler | None:
        """The handler of a method of the service, if it is one."""
        return self.handlers.get(method)

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return CLASSES["ServerLiveResponse"](live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return CLASSES["ServerReadyResponse"](ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return CLASSES["ServerMetadataResponse"](**server_metadata())

    async def ModelReady(self, request: Any, context: Any) -> Any:
        model = self.models.model(request.name, request.version)
        return CLASSES["ModelReadyResponse"](ready=self.models.ready(model))

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        meta = self.models.metadata(self.models.model(request.name, request.version))
        answer = CLASSES["ModelMetadataResponse"](name=meta["name"], versions=meta["versions"],
                                                  platform=meta["platform"])
        for where in ("inputs", "outputs"):
            for tensor in meta[where]:
                getattr(answer, where).add(name=tensor["name"], datatype=tensor["datatype"],
                                           shape=tensor["shape"])
        return answer

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        started = time.perf_counter()
        headers = {k: v for k, v in context.invocation_metadata()
                   if isinstance(v, str) and not k.endswith("-bin")}
        call = Request("POST", PREFIX + "ModelInfer", "HTTP/1.1", headers, id=request_id(headers))
        model: Model | None = None
        code, answered = grpc.StatusCode.OK, dict[str, str]()
        try:
            model = self.models.model(request.model_name, request.model_version)
            refused = self.models.refused(model, headers.get("authorization"))
            if refused is not None:
                raise refused
            wanted = self.models.wanted(model, [o.name for o in request.outputs])
            remaining = context.time_remaining()
            tensors, answered = await self.models.infer(
                model, _tensors(request), wanted, call, call.target, grpc=True,
                timeout_s=remaining)
            answer = self._answer(model, request, tensors, answered)
            context.set_trailing_metadata(tuple(
                (k, v) for k, v in {**answered, "x-request-id": call.id}.items()
                if k in ("x-instance-id", "x-node-id", "x-request-id")))
            return answer
        except OipError as exc:
            code = _code(exc)
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            if model is not None:
                alias = model.name if model.kind == "alias" else None
                node = answered.get("x-node-id") if alias else model.name
                self.gateway.metrics.observe_grpc(node, alias, call.target, code.name,
                                                  time.perf_counter() - started, "oip")

    def _answer(self, model: Model, request: Any, tensors: list[Tensor],
                headers: dict[str, str]) -> Any:
        answer = CLASSES["ModelInferResponse"](
            model_name=model.name, model_version=self.models.version_of(model, headers),
            id=request.id)
        size = 0
        for tensor in tensors:
            answer.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            raw = tensor.as_raw()
            size += len(raw)
            answer.raw_output_contents.append(raw)
        if size > MAX_BYTES:
            raise OipError(502, f"the answer is more than the {MAX_BYTES} bytes allowed")
        return answer


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def _code(exc: OipError) -> grpc.StatusCode:
    if "error_name" in exc.extra:  # the cell raised: as the node's own gRPC service says it
        return grpc.StatusCode[CELL_RAISED]
    if exc.status == 502 and "bytes allowed" in exc.message:
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return grpc.StatusCode[grpc_name(exc.status)]


def _aborting(behaviour: Behaviour) -> Behaviour:
    """The behaviour, with an OipError ending the call with its gRPC status."""
    async def run(request: Any, context: Any) -> Any:
        try:
            return await behaviour(request, context)
        except OipError as exc:
            trailing = (("x-error-name", str(exc.extra["error_name"])),) \
                if "error_name" in exc.extra else ()
            await context.abort(_code(exc), exc.message, trailing)

    return run


def _tensors(request: Any) -> list[Tensor]:
    """The request's input tensors, from raw_input_contents or each input's contents."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise OipError(400, f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    tensors = []
    for i, item in enumerate(request.inputs):
        shape = list(item.shape)
        if raw:
            if item.datatype not in DTYPE_OF and item.datatype != "BYTES":
                raise OipError(400, f"input {item.name!r}: unknown datatype {item.datatype!r}")
            tensors.append(Tensor(item.name, item.datatype, shape, raw=bytes(raw[i])))
            continue
        field = CONTENTS.get(item.datatype)
        if field is None:
            raise OipError(400, f"input {item.name!r}: datatype {item.datatype!r} needs "
                           "raw_input_contents" if item.datatype in DTYPE_OF else
                           f"input {item.name!r}: unknown datatype {item.datatype!r}")
        values = list(getattr(item.contents, field))
        if item.datatype == "BYTES":
            tensors.append(Tensor(item.name, item.datatype, shape, values=values))
            continue
        try:
            tensors.append(Tensor(item.name, item.datatype, shape,
                                  raw=pack(item.datatype, values)))
        except TensorError as exc:
            raise OipError(400, f"input {item.name!r}: {exc}") from None
    return tensors
