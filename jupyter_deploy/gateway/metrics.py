"""The gateway's `GET /metrics`: its own request counts and durations by node and by alias,
and what every healthy instance serves at its `/metrics`, labelled with `node_id` and
`instance_id`.

Families (the seed's names): `node_requests`, `node_http_codes`, `node_grpc_codes`,
`node_request_durations` with the labels `node_id`, `node_path` (and `code`), and the same
with `alias_` and `alias_name`, `alias_path`. A request through an alias counts for the alias
and for the node that served it. Each (name, path, code) keeps its label children, so a
request costs a few dictionary look-ups and increments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ..http.client import ClientProtocol, ResponseTooLarge, UpstreamError
from ..http.messages import Response
from .routing import AliasRoute, Backend, Route, Routes
from .scraped import Clash, merge
from .upstream import SendFailed

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 15.0, 30.0, float("inf"))
SCRAPE_HEAD = b"GET /metrics HTTP/1.1\r\nHost: instance\r\n"
MAX_PAGE = 8 << 20  # bytes of an instance's metrics page
SCRAPE_ERRORS = (OSError, TimeoutError, UpstreamError, SendFailed, ResponseTooLarge)


class Family:
    """`{prefix}_requests`, `_http_codes`, `_grpc_codes` and `_request_durations`."""

    def __init__(self, registry: CollectorRegistry, prefix: str, name_label: str) -> None:
        labels = [name_label, f"{prefix}_path", "protocol"]  # protocol: native or oip
        self.requests = Counter(f"{prefix}_requests", f"Requests to the {prefix}.", labels,
                                registry=registry)
        self.http_codes = Counter(f"{prefix}_http_codes", f"HTTP answers for the {prefix}, by "
                                  "status code.", labels + ["code"], registry=registry)
        self.grpc_codes = Counter(f"{prefix}_grpc_codes", f"gRPC answers for the {prefix}, by "
                                  "status code.", labels + ["code"], registry=registry)
        self.durations = Histogram(f"{prefix}_request_durations", "Seconds the gateway took "
                                   f"to answer a request to the {prefix}.", labels,
                                   buckets=BUCKETS, registry=registry)
        self.children: dict[tuple[str, str, str, bool, str], tuple[Any, Any, Any]] = {}

    def observe(self, name: str, path: str, code: int | str, seconds: float | None,
                grpc: bool = False, protocol: str = "native") -> None:
        key = (name, path, str(code), grpc, protocol)
        children = self.children.get(key)
        if children is None:
            codes = self.grpc_codes if grpc else self.http_codes
            children = self.children[key] = (
                self.requests.labels(name, path, protocol).inc,
                codes.labels(name, path, protocol, key[2]).inc,
                self.durations.labels(name, path, protocol).observe)
        children[0]()
        children[1]()
        if seconds is not None:
            children[2](seconds)

    def forget(self, name: str) -> None:
        """Drop the series of a node or alias that is gone."""
        for key in [key for key in self.children if key[0] == name]:
            del self.children[key]
            _, path, code, grpc, protocol = key
            for metric, labels in ((self.requests, (name, path, protocol)),
                                   (self.durations, (name, path, protocol)),
                                   (self.grpc_codes if grpc else self.http_codes,
                                    (name, path, protocol, code))):
                with contextlib.suppress(KeyError):  # removed with another code already
                    metric.remove(*labels)


class GatewayMetrics:
    """The gateway's counters, on a registry of its own (not prometheus_client's global)."""

    def __init__(self, report: Callable[[str, str], None] | None = None,
                 multiprocess: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # the folder where every gateway worker keeps its counters (prometheus_client's
        # multiprocess mode): any worker's /metrics sums them all; "": this process's own
        self.multiprocess = multiprocess
        self.routes: Routes | None = None  # with `multiprocess`: series of these names only
        self.nodes = Family(self.registry, "node", "node_id")
        self.aliases = Family(self.registry, "alias", "alias_name")
        self.rejections = Counter("node_rejections", "Requests the node's admission control "
                                  "answered without running them: queue_full (429), overdue "
                                  "(504, its deadline passed in the queue).",
                                  ["node_id", "reason"], registry=self.registry)
        self.rejected: dict[tuple[str, str], Any] = {}  # (node, reason) -> its inc()
        self.report = report  # (node, message): a node event, for what is left out
        self.told: set[Clash] = set()  # each clash is an event once, not once per scrape

    def observe(self, target: Route | AliasRoute, path: str, response: Response,
                seconds: float | None, protocol: str = "native") -> None:
        """Count one HTTP request the gateway answered for a node or an alias."""
        node: str | None
        if isinstance(target, AliasRoute):
            self.aliases.observe(target.name, path, response.status, seconds, False, protocol)
            node = response.headers.get("x-node-id") if response.headers else None
        else:
            node = target.node
        if node is not None:
            self.nodes.observe(node, path, response.status, seconds, False, protocol)

    def reject(self, node: str, reason: str) -> None:
        """Count a request of `node` that admission control refused (`reason`)."""
        inc = self.rejected.get((node, reason))
        if inc is None:
            inc = self.rejected[(node, reason)] = self.rejections.labels(node, reason).inc
        inc()

    def observe_grpc(self, node: str | None, alias: str | None, path: str, code: int | str,
                     seconds: float | None, protocol: str = "native") -> None:
        """Count one gRPC call: for the alias it came through, if any, and for the node
        that served it, if any (`code` a gRPC status code)."""
        if alias is not None:
            self.aliases.observe(alias, path, code, seconds, True, protocol)
        if node is not None:
            self.nodes.observe(node, path, code, seconds, True, protocol)

    def forget(self, node: str | None = None, alias: str | None = None) -> None:
        """Drop the series of a node or an alias that is gone."""
        if node is not None:
            self.nodes.forget(node)
            for key in [key for key in self.rejected if key[0] == node]:
                del self.rejected[key]
                self.rejections.remove(*key)
            self.told = {clash for clash in self.told if clash.node != node}
        if alias is not None:
            self.aliases.forget(alias)

    def totals(self, node: str) -> dict[str, float]:
        """The node's counters summed over paths and protocols: what the panel's sparklines
        difference into a request rate and a mean latency."""
        totals = {"requests": 0.0, "errors": 0.0, "duration_sum": 0.0}
        for family in self.own():
            for sample in family.samples:
                if sample.labels.get("node_id") != node:
                    continue
                if sample.name == "node_requests_total":
                    totals["requests"] += sample.value
                elif sample.name == "node_request_durations_sum":
                    totals["duration_sum"] += sample.value
                elif _is_error(sample.name, sample.labels.get("code", "")):
                    totals["errors"] += sample.value
        return totals

    async def exposition(self, routes: Routes, timeout_s: float = 1.0) -> Response:
        """The gateway's families, then the instances' (those that answer within `timeout_s`)."""
        instances = await self.instances(routes, None, timeout_s)
        body = generate_latest(_Exposition([*self.own(), *instances]))
        return Response(200, body, {"Content-Type": CONTENT_TYPE_LATEST})

    async def instances(self, routes: Routes, node: str | None = None, timeout_s: float = 1.0
                        ) -> list[Metric]:
        """What the healthy instances (of `node`, or of all) serve as their own metrics,
        labelled with `node_id` and `instance_id`."""
        backends = [(route.node, backend) for route in list(routes.nodes.values())
                    if node in (None, route.node)
                    for backend in list(route.backends.values()) if backend.telemetry is not None]
        texts = await asyncio.gather(*(_scrape(backend, timeout_s) for _, backend in backends))
        families, clashes = merge(((name, backend.instance_id, text) for (name, backend), text
                                   in zip(backends, texts, strict=True) if text), self.own())
        for clash in clashes:
            if clash not in self.told:
                self.told.add(clash)
                if self.report is not None:
                    self.report(clash.node, clash.message())
        return families

    def own(self) -> list[Metric]:
        """The gateway's families (of every worker), without the `_created` series."""
        families = list(self.registry.collect())
        summed: dict[str, Metric] = {}
        if self.multiprocess:  # this process's families, with the samples of every worker
            registry = CollectorRegistry()
            MultiProcessCollector(registry, self.multiprocess)  # type: ignore[no-untyped-call]
            summed = {family.name: family for family in registry.collect()}
        for family in families:
            if self.multiprocess:  # the files keep every series: those of live names only
                found = summed.get(family.name)
                family.samples = [s for s in found.samples if self._known(s.labels)] \
                    if found is not None else []
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
        return families

    def _known(self, labels: dict[str, str]) -> bool:
        """Whether a series is of a node and an alias that exist (or of neither)."""
        if self.routes is None:
            return True
        node, alias = labels.get("node_id"), labels.get("alias_name")
        return (node is None or node in self.routes.nodes) and \
            (alias is None or alias in self.routes.aliases)

    @staticmethod
    def text(families: list[Metric]) -> str:
        """Families in the Prometheus text format."""
        return generate_latest(_Exposition(families)).decode()


def _is_error(sample: str, code: str) -> bool:
    """An HTTP 5xx, or a gRPC code other than OK."""
    return (sample == "node_http_codes_total" and code.startswith("5")
            or sample == "node_grpc_codes_total" and code != "OK")


class _Exposition:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


async def _scrape(backend: Backend, timeout_s: float) -> str | None:
    """An instance's metrics text, or None when it does not answer in time."""
    try:
        async with asyncio.timeout(timeout_s):
            if backend.telemetry:
                status, body = await _fetch(backend.telemetry)
            else:
                status, _, body = await backend.pool.request(SCRAPE_HEAD, b"")
    except SCRAPE_ERRORS:
        return None
    return body.decode("utf-8", "replace") if status == 200 else None


async def _fetch(url: str) -> tuple[int, bytes]:
    """GET a URL on loopback (an image's telemetry port and path) over HTTP/1.1."""
    parts = urlsplit(url)
    _, connection = await asyncio.get_running_loop().create_connection(
        lambda: ClientProtocol(MAX_PAGE), parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = f"GET {path} HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n"
        status, _, body = await connection.request([head.encode()])
    finally:
        connection.close()
    return status, body
