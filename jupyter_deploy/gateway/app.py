"""The gateway: the data plane third parties call, on its own port.

It sees the headers before the body (a 17 MB upload is refused without being read), checks
the key and the input, and forwards the body bytes to the least-loaded healthy instance as
they came, without re-encoding the JSON.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..errors import error
from ..http.framing import Limits
from ..http.listener import HttpServer, bind
from ..http.messages import Request, Response
from . import openapi, passthrough
from .addresses import answered_as_called, header_key, route_key
from .auth import holds_key, refusal
from .capture import Sampler
from .execute import Mirrors, execute, execute_alias
from .ids import request_id
from .metrics import GatewayMetrics
from .oip.rest import OipRest
from .routing import MAX_BYTES, AliasRoute, Route, Routes

# `/v1/nodes/{node}` or, in a project other than the default (issue 19),
# `/v1/nodes/{project}/{node}`; likewise aliases
EXECUTE_PATH = re.compile(r"/v1/(nodes|aliases)/(?:([^/:%]+)/)?([^/:%]+)(?::|%3[Aa])execute\Z")
DOCS_PATH = re.compile(r"/v1/(nodes|aliases)/(?:([^/:%]+)/)?([^/:%]+)/(openapi\.json|docs)\Z")
STATIC_PATH = re.compile(r"/v1/docs/static/([^/]+)\Z")
PROTO_PATH = re.compile(r"/v1/nodes/(?:([^/:%]+)/)?([^/:%]+)\.proto\Z")
HEALTHY = Response(200, b'{"status": "ok"}')
# (kind, name) -> (the checkpoint it serves, public) or None: what its API document is made of
Describe = Callable[[str, str], "tuple[dict[str, Any], bool] | None"]
# What `check` hands to `handle`: where to execute, a page to make, or None for /healthz
Page = Callable[[Request], Response | Awaitable[Response]]
Context = Route | AliasRoute | Page | None
STOP_MARGIN_S = 1.0  # past the request timeout, how long a stop waits for answers in flight


class Gateway:
    """Serves `POST /v1/nodes/{node}:execute`, `POST /v1/aliases/{alias}:execute`, their
    `x-node-id` / `x-node-alias` header forms on `POST /`, `/healthz`, `/metrics`, and for each
    node and alias its OpenAPI document (`.../openapi.json`) and a page to browse it
    (`.../docs`), and each node's `GET /v1/nodes/{node}.proto`; the Open Inference Protocol
    under `/v2` (oip/rest.py). Every answer carries the request's id in `x-request-id`, which
    instances log."""

    identify = staticmethod(request_id)
    scrape_timeout_s = 1.0  # an instance that does not give its metrics by then is left out

    def __init__(self, routes: Routes, request_timeout_s: float = 15.0,
                 idle_timeout_s: float = 300.0, describe: Describe | None = None,
                 limits: Limits | None = None, public_url: str = "",
                 multiprocess: str = "") -> None:
        self.routes = routes
        self.limits = limits or Limits()  # what one connection of a stranger may cost
        self.public_url = public_url.rstrip("/")  # what documents name as their server
        self.describe = describe or (lambda kind, name: None)
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.http: HttpServer | None = None
        self.mirrors = Mirrors()  # its shadow requests under way
        self.recorder: Sampler | None = None  # samples requests of nodes that capture them
        self.proto_text: Callable[[str], str | None] = lambda node: None  # node -> .proto
        self.metrics = GatewayMetrics(multiprocess=multiprocess)
        self.metrics.routes = routes
        self.oip = OipRest(self)  # the Open Inference Protocol under /v2
        self.healthy = HEALTHY  # what /healthz answers
        routes.on_reject.append(self.metrics.reject)

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Start serving; return the bound port (useful when `port` is 0). `reuse_port`:
        share the port with the other gateway workers (the kernel balances connections)."""
        sock = bind(host, port, reuse_port, who="the gateway")
        self.http = HttpServer(self, MAX_BYTES, self.idle_timeout_s, self.request_timeout_s,
                               self.limits)
        await self.http.start(sock, backlog=1024)
        self.host, self.port = host, int(sock.getsockname()[1])
        return self.port

    async def stop(self, timeout_s: float | None = None) -> None:
        """Stop in order: refuse new connections and close idle ones, give the answers in
        flight (waiting `timeout_s` at most, by default a little past the request timeout),
        then cancel the shadow requests."""
        if self.http is not None:
            wait_s = self.request_timeout_s + STOP_MARGIN_S if timeout_s is None else timeout_s
            await self.http.stop(wait_s)
        await self.mirrors.close()

    def check(self, request: Request) -> Context | Response:
        """Route and authenticate from the headers alone."""
        passing = passthrough.check(self.routes, request, self.request_timeout_s)
        if passing is not None:  # a Docker-image node
            return passing
        path, headers = request.path, request.headers
        if path == "/v2" or path.startswith("/v2/"):
            return self.oip.check(request)
        node, alias = headers.get("x-node-id"), headers.get("x-node-alias")
        if node is None and alias is None:
            match = EXECUTE_PATH.match(path)
            if match is None:
                if path == "/metrics" and request.method == "GET":
                    return self._metrics
                if request.method == "GET":
                    return self._page(path)
                return error("not_found", f"no endpoint {request.method} {path}")
            kind, project, name = match.groups()
            name = route_key(project, name)
            node, alias = (name, None) if kind == "nodes" else (None, name)
        elif path != "/":
            return error("not_found", "with x-node-id or x-node-alias, execute on POST /")
        else:
            node, alias = (header_key(node) if node is not None else None,
                           header_key(alias) if alias is not None else None)
        if request.method != "POST":
            return error("method_not_allowed", "use POST to execute", headers={"Allow": "POST"})
        if alias is not None:
            target: Route | AliasRoute | None = self.routes.aliases.get(alias)
            what, name = "alias", alias
        else:
            target, what, name = self.routes.nodes.get(node or ""), "node", node or ""
        if target is None:
            return error("not_found", f"unknown {what} {name!r}", field=what)
        refused = refusal(target, what, name, headers.get("authorization"))
        if refused is not None:
            self.metrics.observe(target, path, refused, None)
            return refused
        return target

    def _page(self, path: str) -> Page | Response | None:
        """The read-only pages, which need no key: they describe an API, not its data."""
        if path == "/healthz":
            return None
        match = DOCS_PATH.match(path)
        if match is not None:
            kind, project, name, page = match.groups()
            kind, name = "node" if kind == "nodes" else "alias", route_key(project, name)
            if self.describe(kind, name) is None:
                return error("not_found", f"unknown {kind} {name!r}", field=kind)
            if page == "docs":
                return Response(200, openapi.docs_page(kind, name),
                                {"Content-Type": "text/html; charset=utf-8"})
            return partial(self._document, kind, name)
        match = PROTO_PATH.match(path)
        if match is not None:
            return self._proto(route_key(*match.groups()))
        match = STATIC_PATH.match(path)
        found = openapi.static_file(match.group(1)) if match else None
        if found is not None:
            return Response(200, found[0], {"Content-Type": found[1],
                                            "Cache-Control": "max-age=86400"})
        return error("not_found", f"no endpoint GET {path}")

    def _document(self, kind: str, name: str, request: Request) -> Response:
        described = self.describe(kind, name)
        if described is None:
            return error("not_found", f"unknown {kind} {name!r}", field=kind)
        checkpoint, public = described
        # never the Host header: a caller must not choose where the document sends others
        server = self.public_url or f"http://{self.host}:{self.port}"
        document = openapi.document(kind, name, checkpoint, server, public)
        return Response(200, json.dumps(document).encode())

    def _proto(self, node: str) -> Response:
        text = self.proto_text(node)
        if text is None:
            return error("not_found", f"unknown node {node!r}", field="node")
        return Response(200, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def handle(self, request: Request, target: Context) -> Response | Awaitable[Response]:
        """Answer a request routed by `check`."""
        if target is None:
            return self.healthy
        if isinstance(target, Route | AliasRoute):
            return self._execute(request, target)
        return target(request)

    def _metrics(self, request: Request) -> Awaitable[Response]:
        return self.metrics.exposition(self.routes, self.scrape_timeout_s)

    async def _execute(self, request: Request, target: Route | AliasRoute) -> Response:
        started = time.perf_counter()
        response = await self.execute(target, request.body, request.headers,
                                      self.request_timeout_s, request.id)
        self.metrics.observe(target, request.path, response, time.perf_counter() - started)
        return answered_as_called(response)

    def execute(self, target: Route | AliasRoute, body: bytes, headers: dict[str, str],
                timeout_s: float, call_id: str, limit: int = MAX_BYTES) -> Awaitable[Response]:
        """Run a checked request on a node or an alias, recorded when its node captures."""
        answer: Awaitable[Response]
        # a request on an instance for the whole request timeout: the instance is stuck
        stuck_after_s = self.request_timeout_s
        if isinstance(target, AliasRoute):
            reveal = not target.public or holds_key(target, self.routes.nodes,
                                                    headers.get("authorization"))
            answer = execute_alias(self.routes, target, body, headers, timeout_s,
                                   request_id=call_id, limit=limit, mirrors=self.mirrors,
                                   reveal=reveal, stuck_after_s=stuck_after_s)
        else:
            answer = execute(self.routes, target, body, timeout_s, headers, request_id=call_id,
                             limit=limit, stuck_after_s=stuck_after_s)
        if self.recorder is not None:
            answer = self.recorder.watch(target, body, answer, call_id)
        return answer
