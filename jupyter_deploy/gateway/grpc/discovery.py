"""What gRPC clients discover on the gateway's port: server reflection over the fixed
services and each node's own descriptors, and grpc.health.v1 with a status per node."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_reflection.v1alpha.reflection import SERVICE_NAME as REFLECTION_SERVICE

from ...errors import ERRORS
from .proto import FILE_PREFIX, PACKAGE_PREFIX, node_of, service_name

if TYPE_CHECKING:
    from .server import GrpcGateway

GATEWAY_SERVICE = "jupyter_deploy.Gateway"
Code = grpc.StatusCode


def _node_in(name: str) -> str | None:
    """The node a symbol or file name of a node service belongs to, if it is one: the
    package's lowercase parts (a node's, or a project's and its node's) before the first
    capitalized name (`Node`, `Input`...) or `.proto`."""
    for prefix in (PACKAGE_PREFIX, FILE_PREFIX):
        if name.startswith(prefix):
            parts = []
            for part in name[len(prefix):].removesuffix(".proto").split(".")[:2]:
                if not part or part[0].isupper():
                    break
                parts.append(part)
            return node_of(".".join(parts)) if parts else None
    return None


class NodeReflection(ReflectionServicer):  # type: ignore[misc]
    """Server reflection over the fixed services and each node's own descriptor pool."""

    def __init__(self, owner: GrpcGateway) -> None:
        self.owner = owner
        self.fixed = (GATEWAY_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                      REFLECTION_SERVICE)
        super().__init__(self.fixed)

    def _use_pool_of(self, name: str) -> None:
        node = _node_in(name)
        if node is None:
            self._pool = descriptor_pool.Default()
        else:
            schema = self.owner.schema(node)
            self._pool = schema.pool if schema else descriptor_pool.DescriptorPool()

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        self._use_pool_of(filename)
        return super()._file_by_filename(request, filename)

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        self._use_pool_of(fully_qualified_name)
        answer = super()._file_containing_symbol(request, fully_qualified_name)
        if answer.HasField("error_response") and "." in fully_qualified_name:
            # a method (Service.Execute) or a field: the file of what holds it
            answer = super()._file_containing_symbol(request,
                                                     fully_qualified_name.rsplit(".", 1)[0])
        return answer

    def _list_services(self, request: Any) -> Any:
        self._service_names = tuple(sorted((*self.fixed, *map(service_name,
                                                               self.owner.typed_nodes()))))
        return super()._list_services(request)


SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class NodeHealth(HealthServicer):  # type: ignore[misc]
    """"" and jupyter_deploy.Gateway are SERVING; a node's service is SERVING while the node
    has a healthy instance (NOT_SERVING otherwise). `refresh` follows the supervisor's events,
    for Watch; Check looks at the routes themselves."""

    def __init__(self, owner: GrpcGateway) -> None:
        super().__init__()
        self.owner = owner
        self._pending: asyncio.Task[None] | None = None
        self._dirty = False

    def status(self, node: str) -> int | None:
        if node not in self.owner.typed_nodes():
            return None
        route = self.owner.gateway.routes.nodes.get(node)
        return SERVING if route is not None and route.backends else NOT_SERVING

    async def Check(self, request: Any, context: Any) -> Any:
        node = _node_in(request.service)
        if node is None:
            return await super().Check(request, context)
        status = self.status(node)
        if status is None:
            await context.abort(Code[ERRORS["not_found"].grpc], f"unknown node {node!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def refresh(self) -> None:
        await self.set(GATEWAY_SERVICE, SERVING)
        names = set()
        for node in self.owner.typed_nodes():
            names.add(service_name(node))
            await self.set(service_name(node), self.status(node))
        for name in list(self._server_status):
            if name.startswith(PACKAGE_PREFIX) and name not in names:
                await self.set(name, UNKNOWN)
                del self._server_status[name]

    def changed(self, event: Any = None) -> None:
        """A supervisor event: refresh the statuses soon (once for a burst of events)."""
        self._dirty = True
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._refresh_while_dirty())

    async def _refresh_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            await self.refresh()
