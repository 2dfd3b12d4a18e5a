"""Requests to Docker-image nodes: passed through to an instance as they came.

`x-node-id: NODE` on any path, or `/v1/nodes/NODE/PATH`: the method, path, query, body and
the caller's headers (less the hop-by-hop ones and the node key) go to the least-loaded
healthy instance; its answer comes back with its own status, headers and body.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from ..errors import error, too_large, unavailable, upstream_failure
from ..http.server import Request, Response
from .auth import refusal
from .execute import UPSTREAM_ERRORS, NoInstance, send
from .routing import MAX_BYTES, Route, Routes

NODE_PATH = re.compile(r"/v1/nodes/([^/:%]+)(/[^?]*)?(\?.*)?\Z")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "content-length"}
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "x-node-id", "expect"}
Handler = Callable[[Request], Awaitable[Response]]


def check(routes: Routes, request: Request, timeout_s: float) -> Handler | Response | None:
    """A handler when the request is for a Docker-image node (a Response when it is refused);
    None when it is none of this module's business."""
    name = request.headers.get("x-node-id")
    if name is not None:
        target = request.target
    else:
        match = NODE_PATH.match(request.target)
        if match is None:
            return None
        name, path, query = match.groups()
        target = (path or "/") + (query or "")
    route = routes.nodes.get(name)
    if route is None or not route.passthrough:
        return None
    refused = refusal(route, "node", name, request.headers.get("authorization"))
    if refused is not None:
        return refused
    if route.protocol == "grpc":  # an HTTP/1.1 request would only get a 502 from it
        return error("grpc_node", f"node {name!r} speaks gRPC: call it on the gateway's "
                     "gRPC port, with x-node-id metadata")
    return lambda req: forward(route, req, target, route.timeout_s or timeout_s)


async def forward(route: Route, request: Request, target: str, timeout_s: float) -> Response:
    """Send the request to an instance; try another only when nothing was sent."""
    head = [f"{request.method} {target} HTTP/1.1\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in request.headers.items()
             if name not in NOT_FORWARDED]
    if "host" not in request.headers:
        head.append("Host: instance\r\n")
    encoded = "".join(head).encode("latin-1")
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        status, headers, body, backend = await send(route, encoded, request.body, deadline)
    except NoInstance:
        return unavailable(f"node {route.node!r}")
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, MAX_BYTES)
    if len(body) > MAX_BYTES:
        return too_large(len(body), MAX_BYTES)
    answer = {_title(name): value for name, value in headers.items() if name not in HOP_BY_HOP}
    answer["X-Instance-Id"] = backend.instance_id
    return Response(status, body, answer)


def _title(name: str) -> str:
    """`content-type` → `Content-Type`, as the gateway's own answers spell them."""
    return "-".join(part.capitalize() for part in name.split("-"))
