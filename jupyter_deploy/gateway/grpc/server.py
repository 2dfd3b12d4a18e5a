"""The gateway's gRPC port: each node's typed service, a generic one, reflection, health.

A call is transcoded into the REST body and sent down the REST execute path (routing, keys,
limits, retries, timeouts are the same code), then the JSON answer is transcoded back:

- `jupyter_deploy.nodes.<node>.Node/Execute(Input) returns (Output)`: typed, from the
  node's checkpoint (see proto.py). The service's name selects the node and its messages;
  `x-node-id` / `x-node-alias` metadata, when sent, selects where the call goes instead.
- `jupyter_deploy.Gateway/Execute(google.protobuf.Struct) returns (google.protobuf.Struct)`:
  the input object in, the output object out, node chosen by `x-node-id` / `x-node-alias`.

Keys come as `authorization: Bearer KEY` metadata. Reflection lists the node services as
nodes come and go; `grpc.health.v1` says SERVING for a node with a healthy instance.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc

from ...errors import CELL_RAISED, ERRORS, grpc_name
from ...http.messages import Request, Response
from ..addresses import answered_as_called
from ..app import STOP_MARGIN_S, Gateway
from ..ids import request_id
from ..oip.grpc import PREFIX as OIP_PREFIX
from ..oip.grpc import OipGrpc
from ..routing import MAX_BYTES, UPSTREAM_BYTES, AliasRoute, Route
from .discovery import GATEWAY_SERVICE, NodeHealth, NodeReflection
from .passthrough import GrpcPassthrough
from .proto import (
    METHOD,
    PACKAGE_PREFIX,
    SERVICE,
    NodeSchema,
    Schemas,
    node_of,
    service_name,
)
from .transcode import Unsendable, fill_message, message_json, set_struct, struct_json

GENERIC_PATH = f"/{GATEWAY_SERVICE}/{METHOD}"
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_BYTES),
    ("grpc.max_send_message_length", MAX_BYTES),
    ("grpc.so_reuseport", 0),  # a second service on the same port is an error, not a share
]
Code = grpc.StatusCode


def _gateway_file() -> None:
    """Declare jupyter_deploy.Gateway in the default pool, for reflection."""
    file = descriptor_pb2.FileDescriptorProto(
        name="jupyter_deploy/gateway.proto", package="jupyter_deploy", syntax="proto3",
        dependency=["google/protobuf/struct.proto"])
    method = file.service.add(name="Gateway").method.add(name=METHOD)
    method.input_type = method.output_type = ".google.protobuf.Struct"
    descriptor_pool.Default().Add(file)


_gateway_file()


class Failed(Exception):
    """End the call with this status."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 trailing: tuple[tuple[str, Any], ...] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.trailing = code, message, trailing

    @classmethod
    def of(cls, error: str, message: str) -> Failed:
        """The call ends with the gRPC status of `error`, a code of the error table."""
        return cls(Code[ERRORS[error].grpc], message)


def failure(response: Response) -> Failed:
    """The gRPC status of a REST answer that is not a 200."""
    try:
        body = json.loads(response.body)
    except ValueError:
        body = {}
    if isinstance(body, dict) and "error_name" in body:  # the cell raised
        trailing = (("x-error-name", str(body["error_name"])),
                    ("traceback-bin", "\n".join(body.get("traceback", [])).encode()))
        return Failed(Code[CELL_RAISED], f"{body['error_name']}: "
                      f"{body.get('error_message', '')}", trailing)
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = error.get("message", f"HTTP {response.status}")
    return Failed(Code[grpc_name(response.status, error.get("code"))], message)


class GrpcGateway:
    """The gRPC server, on the same event loop as the REST gateway it calls."""

    def __init__(self, gateway: Gateway, nodes: Callable[[], dict[str, Any]],
                 fields_of: Callable[[str], dict[str, Any]]) -> None:
        self.gateway = gateway
        self.nodes = nodes  # name -> Node (its checkpoint_id and checkpoint NAME@VERSION)
        self.fields_of = fields_of  # checkpoint id -> {"inputs": [...], "outputs": [...]}
        self.schemas = Schemas()
        self.health = NodeHealth(self)
        self.passthrough = GrpcPassthrough(gateway)
        self.server: grpc.aio.Server | None = None
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.oip = OipGrpc(gateway)  # inference.GRPCInferenceService

    def schema(self, node: str) -> NodeSchema | None:
        found = self.nodes().get(node)
        if found is None or found.from_image:  # an image's API is its own business
            return None
        return self.schemas.get(node, found.checkpoint_id, found.checkpoint,
                                self.fields_of(found.checkpoint_id))

    def typed_nodes(self) -> list[str]:
        """The nodes with a typed service: those made from a checkpoint."""
        return [name for name, node in list(self.nodes().items()) if not node.from_image]

    def example(self, node: str, values: dict[str, Any]) -> tuple[str, str] | None:
        """The node's typed method and `values` as its input message in protobuf JSON (as
        grpcurl takes it), or None if there is no such node or the values do not fit."""
        from google.protobuf import json_format

        schema = self.schema(node)
        if schema is None:
            return None
        try:
            message = fill_message(schema.input_class(), schema.inputs, values, "input")
        except Unsendable:
            return None
        text = json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)
        return f"{schema.service}/{METHOD}", text

    def proto_text(self, node: str) -> str | None:
        """The node's .proto, or None if there is no such node."""
        schema = self.schema(node)
        return None if schema is None else schema.text()

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Start serving; return the bound port (useful when `port` is 0). `reuse_port`:
        share the port with the other gateway workers."""
        options = [*OPTIONS[:-1], ("grpc.so_reuseport", int(reuse_port))]
        server = grpc.aio.server(options=options, interceptors=(self.passthrough.interceptor,))
        server.add_generic_rpc_handlers((_Handler(self),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(NodeReflection(self), server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(f"the gateway cannot listen for gRPC on {address}")
        await server.start()
        self.server = server
        await self.health.refresh()
        return int(bound)

    async def stop(self) -> None:
        if self.server is not None:
            # the calls in flight get their answers, as on the REST port
            await self.server.stop(grace=self.gateway.request_timeout_s + STOP_MARGIN_S)
        await self.passthrough.close()

    def handler(self, method: str) -> grpc.RpcMethodHandler | None:
        if method.startswith(OIP_PREFIX):
            return self.oip.handler(method)
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        if method == GENERIC_PATH:
            behaviour = self._generic
        elif method.startswith("/" + PACKAGE_PREFIX) and method.endswith(f".{SERVICE}/{METHOD}"):
            package = method[len(PACKAGE_PREFIX) + 1:-len(f".{SERVICE}/{METHOD}")]
            if package.count(".") > 1:  # a node's, or a project's and its node's
                return None
            node = node_of(package)

            async def behaviour(request: bytes, context: Any) -> bytes:
                return await self._typed(node, request, context)
        else:
            return None
        handler = grpc.unary_unary_rpc_method_handler(behaviour)
        if len(self._handlers) < 4096:
            self._handlers[method] = handler
        return handler

    async def _typed(self, node: str, request: bytes, context: Any) -> bytes:
        schema = self.schema(node)
        path = f"/{service_name(node)}/{METHOD}"

        def decode(data: bytes) -> dict[str, Any]:
            if schema is None:
                raise Failed.of("not_found", f"unknown node {node!r}")
            try:
                return message_json(schema.input_class.FromString(data), schema.inputs)
            except DecodeError:
                raise Failed.of("bad_request", f"the request is not a valid "
                                f"{schema.file.package}.Input") from None

        def encode(output: dict[str, Any]) -> bytes:
            assert schema is not None  # decode refused the call otherwise
            message = fill_message(schema.output_class(), schema.outputs, output, "output")
            return bytes(message.SerializeToString())

        return await self._call(request, context, path, decode, encode, node, True)

    async def _generic(self, request: bytes, context: Any) -> bytes:
        def decode(data: bytes) -> dict[str, Any]:
            try:
                return struct_json(struct_pb2.Struct.FromString(data))
            except DecodeError:
                raise Failed.of("bad_request", "the request is not a valid "
                                "google.protobuf.Struct") from None

        def encode(output: dict[str, Any]) -> bytes:
            message = struct_pb2.Struct()
            set_struct(message, output)
            return bytes(message.SerializeToString())

        return await self._call(request, context, GENERIC_PATH, decode, encode, None, False)

    async def _call(self, request: bytes, context: Any, path: str,
                    decode: Callable[[bytes], dict[str, Any]],
                    encode: Callable[[dict[str, Any]], bytes], node: str | None,
                    packed: bool) -> bytes:
        """Route and authenticate as REST does, run the REST execute path, answer."""
        started = time.perf_counter()
        headers = {k: v for k, v in context.invocation_metadata()
                   if isinstance(v, str) and not k.endswith("-bin")}
        alias = headers.get("x-node-alias")
        if alias is None:
            node = headers.setdefault("x-node-id", node)  # type: ignore[arg-type]
        code = Code.OK
        call_id = request_id(headers)
        try:
            if node is None and alias is None:
                raise Failed.of("bad_request", "send x-node-id or x-node-alias metadata "
                                "to say which node runs the call")
            target = self.gateway.check(Request("POST", "/", "HTTP/1.1", headers))
            if isinstance(target, Response):
                raise failure(target)
            assert isinstance(target, Route | AliasRoute)  # POST / with a node or an alias
            body = json.dumps({"input": decode(request)}).encode()
            remaining = context.time_remaining()
            timeout = self.gateway.request_timeout_s
            if remaining is not None:
                timeout = min(timeout, remaining)
            if packed:
                headers["x-array-encoding"] = "base64"
            if isinstance(target, AliasRoute):
                node = None
            response = await self.gateway.execute(target, body, headers, timeout, call_id,
                                                  UPSTREAM_BYTES)
            node = (response.headers or {}).get("x-node-id", node)
            return _reply(response, encode, context, call_id)
        except Failed as exc:
            code = exc.code
            await context.abort(exc.code, exc.message, exc.trailing)
            raise  # abort raises; this is not reached
        except asyncio.CancelledError:  # the caller went away, or its deadline passed
            remaining = context.time_remaining()
            code = Code.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 \
                else Code.CANCELLED
            raise
        except Exception:  # grpc answers UNKNOWN
            code = Code.UNKNOWN
            raise
        finally:
            self.gateway.metrics.observe_grpc(node or None, alias, path, code.name,
                                              time.perf_counter() - started)


def _reply(response: Response, encode: Callable[[dict[str, Any]], bytes], context: Any,
           call_id: str) -> bytes:
    """The typed reply of the REST execute path's answer, with its ids as trailing metadata."""
    extra = {**(answered_as_called(response).headers or {}), "x-request-id": call_id}
    if response.status != 200:
        raise failure(response)
    try:
        data = encode(json.loads(response.body)["output"])
    except Unsendable as exc:
        raise Failed.of("invalid_output", f"{exc.field}: the output does not fit "
                        f"the typed reply: {exc}") from None
    if len(data) > MAX_BYTES:
        raise Failed.of("response_too_large", f"the answer is {len(data)} bytes, "
                        f"more than the {MAX_BYTES} allowed")
    context.set_trailing_metadata(tuple(
        (k, v) for k, v in extra.items() if k in ("x-instance-id", "x-node-id", "x-request-id")))
    return data


# grpcio ships no type information: its classes are Any to mypy, subclassed all the same
class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, owner: GrpcGateway) -> None:
        self.owner = owner

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        found = self.owner.handler(handler_call_details.method)
        # any other method with x-node-id / x-node-alias: the pass-through says why not (issue 15)
        return found or self.owner.passthrough.handler(handler_call_details)
