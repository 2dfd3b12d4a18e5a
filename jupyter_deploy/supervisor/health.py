"""Probing an instance: HTTP (a checkpoint's /readyz, an image's health path) or gRPC."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..http.protocol import ClientProtocol, UpstreamError
from ..models import Instance, Node

PROBE_ERRORS = (OSError, asyncio.TimeoutError, UpstreamError)
GRPC_SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}


async def probe(host: str, port: int, path: str, timeout_s: float) -> tuple[int, Any]:
    """GET `path` on a new connection; (status, decoded JSON or None).

    Raises OSError, TimeoutError or UpstreamError when there is no answer.
    """
    async with asyncio.timeout(timeout_s):
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: ClientProtocol(1 << 20), host, port)
        try:
            head = f"GET {path} HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n"
            status, _, body = await connection.request([head.encode()])
        finally:
            connection.close()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


async def connects(host: str, port: int | None, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def healthy(node: Node, instance: Instance, timeout_s: float) -> bool:
    """One health check of the instance, as the node configures it."""
    port = instance.health_port or instance.port or 0
    if not node.from_image:
        path = "/readyz"
    elif node.health.protocol == "grpc":
        return await grpc_serving(instance.host, port, timeout_s)
    else:
        path = node.health.path or "/"
    try:
        status, _ = await probe(instance.host, port, path, timeout_s)
    except PROBE_ERRORS:
        return False
    return 200 <= status < 300


async def grpc_serving(host: str, port: int, timeout_s: float) -> bool:
    """The standard gRPC health check (grpc.health.v1.Health/Check, whole server)."""
    import grpc

    async with grpc.aio.insecure_channel(f"{host}:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=None, response_deserializer=None)
        try:
            answer = await check(b"", timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
    return bool(answer == GRPC_SERVING)
