"""The gateway: the data plane third parties call, on its own port.

It sees the headers before the body (a 17 MB upload is refused without being read), checks
the key and the input, and forwards the body bytes to the least-loaded healthy instance as
they came, without re-encoding the JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ..http.protocol import (
    Request,
    Response,
    ResponseTooLarge,
    ServerProtocol,
    UpstreamError,
    error,
)
from ..types import invalid_input_body
from . import openapi, passthrough
from .capture import Recorder
from .ids import request_id
from .metrics import GatewayMetrics
from .routing import (
    MAX_BYTES,
    AliasRoute,
    InvalidRequest,
    NoInstance,
    Route,
    Routes,
    sticky_point,
)
from .upstream import failed, too_large

EXECUTE_PATH = re.compile(r"/v1/(nodes|aliases)/([^/:%]+)(?::|%3[Aa])execute\Z")
DOCS_PATH = re.compile(r"/v1/(nodes|aliases)/([^/:%]+)/(openapi\.json|docs)\Z")
STATIC_PATH = re.compile(r"/v1/docs/static/([^/]+)\Z")
PROTO_PATH = re.compile(r"/v1/nodes/([^/:%]+)\.proto\Z")
HEALTHY = Response(200, b'{"status": "ok"}')
# (kind, name) -> (the checkpoint it serves, public) or None: what its API document is made of
Describe = Callable[[str, str], "tuple[dict[str, Any], bool] | None"]
METRICS = object()  # the context of `GET /metrics`
UNAUTHORIZED, FORBIDDEN = Response(401), Response(403)  # refusals, as the metrics count them


class Gateway:
    """Serves `POST /v1/nodes/{node}:execute`, `POST /v1/aliases/{alias}:execute`, their
    `x-node-id` / `x-node-alias` header forms on `POST /`, `/healthz`, `/metrics`, and for each
    node and alias its OpenAPI document (`.../openapi.json`) and a page to browse it
    (`.../docs`), and each node's `GET /v1/nodes/{node}.proto`. Every answer carries the
    request's id in `x-request-id`, which instances log."""

    identify = staticmethod(request_id)
    scrape_timeout_s = 1.0  # an instance that does not give its metrics by then is left out

    def __init__(self, routes: Routes, request_timeout_s: float = 15.0,
                 idle_timeout_s: float = 300.0, describe: Describe | None = None) -> None:
        self.routes = routes
        self.describe = describe or (lambda kind, name: None)
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.server: asyncio.AbstractServer | None = None
        self.recorder: Recorder | None = None  # samples requests of nodes that capture them
        self.proto_text: Callable[[str], str | None] = lambda node: None  # node -> .proto
        self.metrics = GatewayMetrics()

    async def listen(self, host: str, port: int) -> int:
        """Start serving; return the bound port (useful when `port` is 0)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"the gateway cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.server = await asyncio.get_running_loop().create_server(
            lambda: ServerProtocol(self, MAX_BYTES, self.idle_timeout_s, self.request_timeout_s),
            sock=sock, backlog=1024)
        self.host, self.port = host, sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def check(self, request: Request) -> Route | AliasRoute | Response | object | None:
        """Route and authenticate from the headers alone."""
        passing = passthrough.check(self.routes, request, self.request_timeout_s)
        if passing is not None:  # a Docker-image node
            return passing
        path, headers = request.path, request.headers
        node, alias = headers.get("x-node-id"), headers.get("x-node-alias")
        if node is None and alias is None:
            match = EXECUTE_PATH.match(path)
            if match is None:
                if path == "/metrics" and request.method == "GET":
                    return METRICS
                if request.method == "GET":
                    return self._page(path)
                return error(404, "not_found", f"no endpoint {request.method} {path}")
            kind, name = match.groups()
            node, alias = (name, None) if kind == "nodes" else (None, name)
        elif path != "/":
            return error(404, "not_found", "with x-node-id or x-node-alias, execute on POST /")
        if request.method != "POST":
            return error(405, "method_not_allowed", "use POST to execute", headers={"Allow": "POST"})
        if alias is not None:
            target: Route | AliasRoute | None = self.routes.aliases.get(alias)
            what, name = "alias", alias
        else:
            target, what, name = self.routes.nodes.get(node), "node", node
        if target is None:
            return error(404, "not_found", f"unknown {what} {name!r}", field=what)
        if isinstance(target, AliasRoute) and target.public:
            return target
        auth = headers.get("authorization")
        if not auth:
            self.metrics.observe(target, path, UNAUTHORIZED, None)
            return error(401, "unauthorized", f"send Authorization: Bearer <{what} key>",
                         headers={"WWW-Authenticate": "Bearer"})
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not target.key_matches(key.strip()):
            self.metrics.observe(target, path, FORBIDDEN, None)
            return error(403, "forbidden", f"the key does not open {what} {name!r}")
        return target

    def _page(self, path: str) -> Callable[[Request], Response] | Response | None:
        """The read-only pages, which need no key: they describe an API, not its data."""
        if path == "/healthz":
            return None
        match = DOCS_PATH.match(path)
        if match is not None:
            kind, name, page = match.groups()
            kind = "node" if kind == "nodes" else "alias"
            if self.describe(kind, name) is None:
                return error(404, "not_found", f"unknown {kind} {name!r}", field=kind)
            if page == "docs":
                return Response(200, openapi.docs_page(kind, name),
                                {"Content-Type": "text/html; charset=utf-8"})
            return partial(self._document, kind, name)
        match = PROTO_PATH.match(path)
        if match is not None:
            return self._proto(match.group(1))
        match = STATIC_PATH.match(path)
        found = openapi.static_file(match.group(1)) if match else None
        if found is not None:
            return Response(200, found[0], {"Content-Type": found[1],
                                            "Cache-Control": "max-age=86400"})
        return error(404, "not_found", f"no endpoint GET {path}")

    def _document(self, kind: str, name: str, request: Request) -> Response:
        described = self.describe(kind, name)
        if described is None:
            return error(404, "not_found", f"unknown {kind} {name!r}", field=kind)
        checkpoint, public = described
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        document = openapi.document(kind, name, checkpoint, f"http://{host}", public)
        return Response(200, json.dumps(document).encode())

    def _proto(self, node: str) -> Response:
        text = self.proto_text(node)
        if text is None:
            return error(404, "not_found", f"unknown node {node!r}", field="node")
        return Response(200, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def handle(self, request: Request, target: Route | AliasRoute | Callable | object | None):
        if target is None:
            return HEALTHY
        if target is METRICS:
            return self.metrics.exposition(self.routes, self.scrape_timeout_s)
        if callable(target):
            return target(request)
        return self._execute(request, target)  # type: ignore[arg-type]

    async def _execute(self, request: Request, target: Route | AliasRoute) -> Response:
        started = time.perf_counter()
        if isinstance(target, AliasRoute):
            answer = execute_alias(self.routes, target, request.body, request.headers,
                                   self.request_timeout_s, request_id=request.id)
        else:
            answer = execute(self.routes, target, request.body, self.request_timeout_s,
                             request.headers, request_id=request.id)
        if self.recorder is not None:
            answer = self.recorder.watch(target, request.body, answer, request.id)
        response = await answer
        self.metrics.observe(target, request.path, response, time.perf_counter() - started)
        return response


def _payload(body: bytes) -> tuple[Any, Response | None]:
    try:
        return json.loads(body), None
    except ValueError as exc:
        return None, error(400, "malformed_json", f"the body is not valid JSON: {exc}",
                           field="body")


def _sticky_key(sticky: dict[str, str] | None, headers: dict[str, str], payload: Any
                ) -> str | None:
    """The caller's key for sticky routing, from a header or an input field, if configured."""
    if not sticky:
        return None
    if "header" in sticky:
        return headers.get(sticky["header"].lower())
    inputs = payload.get("input") if isinstance(payload, dict) else None
    value = inputs.get(sticky["input"]) if isinstance(inputs, dict) else None
    return None if value is None else json.dumps(value, sort_keys=True)


def _passed_on(headers: dict[str, str]) -> bytes:
    """The caller's headers the instance reads (the encoding it answers arrays in)."""
    return b"x-array-encoding: base64\r\n" if headers.get("x-array-encoding") == "base64" else b""


async def _forward(routes: Routes, route: Route, body: bytes, payload: Any, timeout_s: float,
                   key: str | None, extra: dict[str, str], hold: bool = True,
                   passed_on: bytes = b"", request_id: str = "", limit: int = MAX_BYTES
                   ) -> Response | None:
    """Send the request to the node; None when it has no healthy instance. `extra`: headers
    of the answer (through an alias, the node that answered)."""
    try:
        status, data, instance = await routes.execute(route, body, payload, timeout_s, key, hold,
                                                      passed_on, request_id)
    except NoInstance:
        return None
    except InvalidRequest as exc:
        return Response(422, json.dumps(invalid_input_body(exc.errors)).encode(), extra or None)
    except (TimeoutError, ResponseTooLarge, UpstreamError) as exc:
        return failed(exc, limit, extra or None)
    if len(data) > limit:
        return too_large(len(data), limit, extra or None)
    return Response(status, data, {**extra, "x-instance-id": instance})


def _unavailable(what: str) -> Response:
    return error(503, "unavailable", f"{what} has no healthy instance right now",
                 headers={"Retry-After": "1"})


async def execute(routes: Routes, route: Route, body: bytes, timeout_s: float,
                  headers: dict[str, str] | None = None, *, request_id: str = "",
                  limit: int = MAX_BYTES) -> Response:
    """Check a request body and run it on the node (`limit`: bytes of the answer)."""
    payload, problem = _payload(body)
    if problem:
        return problem
    headers = headers or {}
    key = _sticky_key(route.sticky, headers, payload)
    response = await _forward(routes, route, body, payload, timeout_s, key, {},
                              passed_on=_passed_on(headers), request_id=request_id, limit=limit)
    return response or _unavailable(f"node {route.node!r}")


async def execute_alias(routes: Routes, alias: AliasRoute, body: bytes, headers: dict[str, str],
                        timeout_s: float, *, request_id: str = "", limit: int = MAX_BYTES
                        ) -> Response:
    """Pick a node by weight (or by sticky key); if it has no healthy instance, the others;
    a node scaled to zero holds the request only when no node of the alias can serve now.
    One deadline for it all. A share of the requests is mirrored to the shadow node."""
    payload, problem = _payload(body)
    if problem:
        return problem
    key = _sticky_key(alias.sticky, headers, payload)
    passed_on = _passed_on(headers)
    point = sticky_point(key) if key is not None else random.random() * 100
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    response = None
    for hold in (False, True):
        for node in alias.order(point):
            route = routes.nodes.get(node)
            if route is None or (hold and not route.hold):
                continue
            node_key = key if key is not None else _sticky_key(route.sticky, headers, payload)
            response = await _forward(routes, route, body, payload, deadline - loop.time(),
                                      node_key, {"x-node-id": node}, hold, passed_on,
                                      request_id, limit)
            if response is not None:
                break
        if response is not None:
            break
    if response is None:
        return _unavailable(f"alias {alias.name!r}")
    shadow = alias.shadow
    if shadow and len(_mirrors) < MAX_MIRRORS and random.random() * 100 < shadow["percent"]:
        task = asyncio.ensure_future(_mirror(routes, alias, body, payload, response, timeout_s,
                                             request_id))
        _mirrors.add(task)
        task.add_done_callback(_mirrors.discard)
    return response


MAX_MIRRORS = 64  # shadow requests under way at once; past that, requests are not mirrored
_mirrors: set[asyncio.Future] = set()  # shadow requests under way (kept from the GC)


async def _mirror(routes: Routes, alias: AliasRoute, body: bytes, payload: Any,
                  primary: Response, timeout_s: float, request_id: str = "") -> None:
    """Send a copy to the shadow node; record its answer beside the primary's, return nothing."""
    node = alias.shadow["node"]  # type: ignore[index]
    route = routes.nodes.get(node)
    started = time.perf_counter()
    response = None if route is None else await _forward(routes, route, body, payload, timeout_s,
                                                          None, {}, False,
                                                          request_id=request_id)
    response = response or _unavailable(f"node {node!r}")
    alias.shadow_record.add({
        "time": time.time(),
        "node": node,
        "status": response.status,
        "primary_status": primary.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        # both bodies come from the same serializer: equal outputs are equal bytes
        "same_output": response.status == primary.status and response.body == primary.body,
    })
