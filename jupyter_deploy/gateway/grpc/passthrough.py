"""Calls to Docker-image nodes that speak gRPC: any service and method, passed through.

A call of a method the gateway does not serve itself, with `x-node-id: NODE` or
`x-node-alias: ALIAS` metadata, goes to the least-loaded healthy instance of the node (for an
alias, of a node picked by weight) as it came: messages as raw bytes in both directions, so
every kind of method works (unary, server-, client- and bidirectional streaming); the caller's
metadata, less the key and the routing headers; the caller's deadline, within the node's
session timeout (else the gateway's request timeout). The instance's initial metadata, status, details and trailing metadata come
back, with `x-instance-id`, `x-request-id` (the instance gets it too, as on the REST side)
and, through an alias, `x-node-id` added to the trailing metadata. Messages over 16 MB are
refused either way with RESOURCE_EXHAUSTED. A node scaled to zero holds the call until an
instance serves, within the deadline.

Keys come as `authorization: Bearer KEY` metadata; refusals mirror the REST side: 401 is
UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 503 UNAVAILABLE.

A call for a node that speaks gRPC is taken before the gateway looks for its own methods
(`Interceptor`), so grpc.health.v1 and reflection with `x-node-id` reach the node's own
services, as grpcurl expects; `jupyter_deploy.*` stays the gateway's. Other calls find the gateway's methods first; one it does not
have, with routing metadata, gets this module's clear refusal (`GrpcPassthrough.handler`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ...errors import ERRORS
from ..addresses import header_key
from ..app import Gateway
from ..auth import key_problem
from ..ids import request_id
from ..routing import MAX_BYTES, AliasRoute, Backend, Route, pick_node, sticky_point
from .proto import METHOD, service_name

ROUTING = ("x-node-id", "x-node-alias")
OWN = "/jupyter_deploy."  # the gateway's own services: never passed on, even to a gRPC node
# The gateway's own (the key, the routing) and what the channel to the instance sets itself.
NOT_PASSED = {"authorization", *ROUTING, "x-request-id", "user-agent", "te", "content-type",
              "host"}
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_BYTES),
    ("grpc.max_send_message_length", MAX_BYTES),
]
Code = grpc.StatusCode
FAILING = grpc.ChannelConnectivity.TRANSIENT_FAILURE  # the last connection attempt failed
Metadata = tuple[tuple[str, str | bytes], ...]


class Refused(Exception):
    """End the call with this status before anything reaches an instance."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Upstream:
    """How the instance ended the call: passed back to the caller as it is."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Metadata) -> None:
        self.code, self.details, self.trailing = code, details, trailing


def routed(metadata: Any) -> bool:
    """Whether a call's metadata names a node or an alias."""
    return any(key in ROUTING for key, _ in metadata or ())


def passed_on(metadata: Metadata, call_id: str) -> Metadata:
    """The caller's metadata the instance gets: not the key, not the routing headers; the
    call's id."""
    return (*((key, value) for key, value in metadata
              if key not in NOT_PASSED and not key.startswith((":", "grpc-"))),
            ("x-request-id", call_id))


def check_key(target: Route | AliasRoute, what: str, name: str, headers: dict[str, str]) -> None:
    """Refuse a call without the key that opens the node or alias, by the gateway's one key
    check (public aliases need none)."""
    problem = key_problem(target, what, name, headers.get("authorization"))
    if problem is not None:
        code, message = problem
        raise Refused(getattr(grpc.StatusCode, ERRORS[code].grpc), message.replace(
            "Authorization: Bearer", "authorization: Bearer") + (" metadata" if code == "unauthorized" else ""))


def _speaks_grpc(route: Route) -> str | None:
    """Why the node cannot take a passed-through gRPC call, or None when it can."""
    if not route.passthrough:
        return (f"node {route.node!r} runs a checkpoint: call "
                f"{service_name(route.node)}/{METHOD} or jupyter_deploy.Gateway/{METHOD}")
    if route.protocol != "grpc":
        return (f"node {route.node!r} speaks HTTP: call it on the gateway's HTTP port "
                "with the x-node-id header")
    return None


class GrpcPassthrough:
    """Hands calls that name a node or an alias to its instances; one channel per instance."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.channels: dict[tuple[str, int], grpc.aio.Channel] = {}
        self._closing: set[asyncio.Future[None]] = set()  # channels closed with grace
        self.interceptor = Interceptor(self)

    def for_grpc_node(self, metadata: Any) -> bool:
        """Whether the call names a node that speaks gRPC, or an alias with one."""
        if not routed(metadata):
            return False
        headers = {k: v for k, v in metadata if isinstance(v, str)}
        routes = self.gateway.routes
        if "x-node-alias" in headers:
            alias = routes.aliases.get(header_key(headers["x-node-alias"]))
            names = [name for name, _ in alias.weights] if alias is not None else []
        else:
            names = [header_key(headers.get("x-node-id", ""))]
        return any(r is not None and _speaks_grpc(r) is None for r in map(routes.nodes.get, names))

    def handler(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The pass-through of a call whose metadata names a node or alias; None otherwise."""
        if not routed(details.invocation_metadata):
            return None
        method = details.method

        async def behaviour(requests: AsyncIterator[bytes],
                            context: grpc.aio.ServicerContext) -> None:
            await self.call(method, requests, context)

        # raw bytes both ways: a stream-stream handler carries every kind of method
        return grpc.stream_stream_rpc_method_handler(behaviour)

    async def call(self, method: str, requests: AsyncIterator[bytes],
                   context: grpc.aio.ServicerContext) -> None:
        """Route, authenticate, relay the call to an instance, pass its ending back."""
        started = time.perf_counter()
        metadata: Metadata = tuple(context.invocation_metadata() or ())
        headers = {k: v for k, v in metadata if isinstance(v, str)}
        alias = headers.get("x-node-alias")
        node = None if alias is not None else headers.get("x-node-id")
        alias, node = (None if n is None else header_key(n) for n in (alias, node))
        call_id = request_id(headers)
        code, route = Code.UNKNOWN, None
        try:
            route = self._route(alias, node, headers)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout(route, context)
            if not route.backends and route.hold:
                await self._hold(route, deadline)
            added: Metadata = (("x-request-id", call_id),)
            if alias is not None:
                added += (("x-node-id", route.node),)
            code = await self._relay(route, method, requests, context, deadline - loop.time(),
                                     passed_on(metadata, call_id), added)
        except Refused as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        except asyncio.CancelledError:  # the caller went away, or its deadline passed
            remaining = context.time_remaining()
            code = Code.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 \
                else Code.CANCELLED
            raise
        finally:  # counted once the key opened the way: no method names from anyone else
            if route is not None:
                self.gateway.metrics.observe_grpc(route.node, alias, method, code.name,
                                                  time.perf_counter() - started)

    def _timeout(self, route: Route, context: grpc.aio.ServicerContext) -> float:
        """Seconds the call may take: the caller's deadline, within the node's timeout."""
        timeout = route.timeout_s or self.gateway.request_timeout_s
        remaining = context.time_remaining()
        return timeout if remaining is None else min(timeout, remaining)

    def _route(self, alias: str | None, node: str | None, headers: dict[str, str]) -> Route:
        """The node that takes the call, checked (it exists, the key, its protocol)."""
        routes = self.gateway.routes
        if alias is not None:
            found = routes.aliases.get(alias)
            if found is None:
                raise Refused(Code.NOT_FOUND, f"unknown alias {alias!r}")
            check_key(found, "alias", alias, headers)
            return self._alias_node(found, headers)
        route = routes.nodes.get(node or "")
        if route is None:
            raise Refused(Code.NOT_FOUND, f"unknown node {node!r}")
        check_key(route, "node", route.node, headers)
        problem = _speaks_grpc(route)
        if problem is not None:
            raise Refused(Code.UNIMPLEMENTED, problem)
        return route

    def _alias_node(self, alias: AliasRoute, headers: dict[str, str]) -> Route:
        """The node the alias's weights pick (by sticky header, if set), or the next one
        with a healthy instance."""
        if not alias.weights:
            raise Refused(Code.UNAVAILABLE, f"alias {alias.name!r} points at no node")
        sticky = headers.get(alias.sticky["header"].lower()) \
            if alias.sticky and "header" in alias.sticky else None
        point = sticky_point(sticky) if sticky is not None else random.random() * 100
        first = pick_node(alias.weights, point)
        order = [first] + [name for name, _ in alias.weights if name != first]
        candidates = [r for r in map(self.gateway.routes.nodes.get, order)
                      if r is not None and _speaks_grpc(r) is None]
        if not candidates:
            raise Refused(Code.UNIMPLEMENTED, f"alias {alias.name!r} has no node that speaks "
                          "gRPC (a Docker-image node with protocol grpc)")
        for route in candidates:
            if route.backends:
                return route
        return candidates[0]

    @staticmethod
    async def _hold(route: Route, deadline: float) -> None:
        """A node scaled to zero: wait for an instance, counted as demand, until the deadline."""
        route.waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                while not route.backends and route.hold:
                    await route.added.wait()
        except TimeoutError:
            pass
        finally:
            route.waiting -= 1

    def _pick(self, route: Route) -> Backend:
        """The least-loaded healthy instance; one whose channel failed to connect only if
        there is no other."""
        tried: set[str] = set()
        fallback = None
        while (backend := route.pick(tried)) is not None:
            channel = self.channels.get((backend.pool.host, backend.pool.port))
            if channel is None or channel.get_state() != FAILING:
                return backend
            tried.add(backend.instance_id)
            fallback = fallback or backend
        if fallback is None:
            raise Refused(Code.UNAVAILABLE, f"node {route.node!r} has no healthy instance "
                          "right now")
        return fallback

    async def _relay(self, route: Route, method: str, requests: AsyncIterator[bytes],
                     context: grpc.aio.ServicerContext, timeout: float,
                     metadata: Metadata, added: Metadata) -> grpc.StatusCode:
        """Stream the call to an instance and back; end it as the instance ended it, with
        `added` and the instance's id in the trailing metadata."""
        backend = self._pick(route)
        multicallable = self._channel(backend).stream_stream(
            method, request_serializer=None, response_deserializer=None)
        backend.add(1)
        try:
            call = multicallable(requests, timeout=timeout, metadata=metadata)
            try:
                ending = await _stream_back(call, context)
            except BaseException:  # the caller went away: so does the instance's call
                call.cancel()
                raise
        finally:
            backend.add(-1)
        context.set_trailing_metadata(
            (*ending.trailing, ("x-instance-id", backend.instance_id), *added))
        if ending.code != Code.OK:
            context.set_code(ending.code)
            context.set_details(ending.details)
        return ending.code

    def _channel(self, backend: Backend) -> grpc.aio.Channel:
        """The channel to the instance (made once); channels of gone instances are closed."""
        address = (backend.pool.host, backend.pool.port)
        channel = self.channels.get(address)
        if channel is None:
            self._close_unused()
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            channel = grpc.aio.insecure_channel(f"{host}:{address[1]}", options=CHANNEL_OPTIONS)
            self.channels[address] = channel
        return channel

    def _close_unused(self) -> None:
        """Close the channels to addresses no instance has now, after their calls end."""
        used = {(b.pool.host, b.pool.port) for route in self.gateway.routes.nodes.values()
                for b in route.backends.values()}
        for address in [a for a in self.channels if a not in used]:
            closing = asyncio.ensure_future(self.channels.pop(address).close(
                grace=self.gateway.request_timeout_s))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every channel (calls under way are cancelled)."""
        channels, self.channels = list(self.channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels), *self._closing,
                             return_exceptions=True)


class Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc has no type hints
    """Takes the calls for a node that speaks gRPC before the gateway's own methods."""

    def __init__(self, owner: GrpcPassthrough) -> None:
        self.owner = owner

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler | None]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The pass-through for such a call; the gateway's own lookup for the others."""
        if not details.method.startswith(OWN) and \
                self.owner.for_grpc_node(details.invocation_metadata):
            return self.owner.handler(details)
        return await continuation(details)


async def _stream_back(call: Any, context: grpc.aio.ServicerContext) -> Upstream:
    """Write the instance's answers to the caller as they come; how the instance ended."""
    initial = await call.initial_metadata()
    if initial:
        await context.send_initial_metadata(tuple(initial))
    try:
        while (message := await call.read()) is not grpc.aio.EOF:
            await context.write(message)
    except grpc.aio.AioRpcError:
        pass  # the call's own status, below, says why
    trailing = await call.trailing_metadata()
    return Upstream(await call.code(), await call.details() or "",
                    tuple(trailing) if trailing else ())
