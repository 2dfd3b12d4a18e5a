"""Requests to Docker-image nodes: passed through to an instance as they came.

`x-node-id: NODE` on any path, or `/v1/nodes/NODE/PATH`: the method, path, query, body and
the caller's headers (less the hop-by-hop ones, those `Connection` names, and the node key,
plus `X-Forwarded-For`, `X-Forwarded-Proto` and `Via`) go to the least-loaded healthy
instance; its answer comes back with its own status, body and fields as they came (less the
hop-by-hop ones): two `Set-Cookie` stay two, and no type is invented (RFC 9110 7.6).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from ..errors import error, too_large, unavailable, upstream_failure
from ..http.client import Fields
from ..http.framing import tokens
from ..http.messages import Request, Response
from .addresses import header_key, route_key
from .auth import refusal
from .execute import UPSTREAM_ERRORS, NoInstance, send
from .routing import MAX_BYTES, Route, Routes

NODE_PATH = re.compile(r"/v1/nodes/([^/:%]+)(/[^?]*)?(\?.*)?\Z")
# /v1/nodes/{project}/{node}/PATH: a default-project node's name is never a project's
PROJECT_PATH = re.compile(r"/([^/:%?]+)(/[^?]*)?\Z")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
ADDED = {"x-forwarded-for", "x-forwarded-proto", "via"}  # set here, from what came
NOT_FORWARDED = HOP_BY_HOP | ADDED | {"authorization", "x-node-id", "expect", "content-length"}
VIA = "1.1 jupyter-deploy"
Handler = Callable[[Request], Awaitable[Response]]


def check(routes: Routes, request: Request, timeout_s: float) -> Handler | Response | None:
    """A handler when the request is for a Docker-image node (a Response when it is refused);
    None when it is none of this module's business."""
    name = request.headers.get("x-node-id")
    if name is not None:
        name, target = header_key(name), request.target
    else:
        match = NODE_PATH.match(request.target)
        if match is None:
            return None
        name, path, query = match.groups()
        if name not in routes.nodes and path and (inner := PROJECT_PATH.match(path)):
            name, path = route_key(name, inner.group(1)), inner.group(2)
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
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        status, headers, body, backend = await send(route, _head(request, target),
                                                    request.body, deadline)
    except NoInstance:
        return unavailable(f"node {route.node!r}")
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, MAX_BYTES)
    if len(body) > MAX_BYTES:
        return too_large(len(body), MAX_BYTES)
    raw = headers.raw if isinstance(headers, Fields) else list(headers.items())
    dropped = HOP_BY_HOP | set(tokens(headers.get("connection", "")))
    if request.method != "HEAD" and status != 304:  # else its length is the one to keep
        dropped.add("content-length")
    fields = [(name, value) for name, value in raw if name.lower() not in dropped]
    fields.append(("X-Instance-Id", backend.instance_id))
    return Response(status, body, fields=fields)


def _head(request: Request, target: str) -> bytes:
    """The request line and fields sent to the instance (Content-Length is added later)."""
    dropped = NOT_FORWARDED | set(tokens(request.headers.get("connection", "")))
    fields = request.fields if request.fields is not None else list(request.headers.items())
    head = [f"{request.method} {target} HTTP/1.1\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in fields if name.lower() not in dropped]
    if "host" not in request.headers:
        head.append("Host: instance\r\n")
    forwarded = request.headers.get("x-forwarded-for")
    client = request.client or "unknown"
    head.append(f"X-Forwarded-For: {forwarded}, {client}\r\n" if forwarded else
                f"X-Forwarded-For: {client}\r\n")
    head.append("X-Forwarded-Proto: http\r\n")  # the gateway itself speaks plain HTTP
    via = request.headers.get("via")
    head.append(f"Via: {via}, {VIA}\r\n" if via else f"Via: {VIA}\r\n")
    return "".join(head).encode("latin-1")
