"""Request capture: a sampled share of a node's requests, with their answers, kept to look at.

On the request path the gateway only appends a tuple to a bounded buffer in memory (the
bodies as the bytes it has anyway, parsed only when read); a background task writes the
buffer to the store in one transaction every `period_s` and keeps at most `limit` rows per
node. Bodies over `MAX_BODY` are kept as their size only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable
from typing import Any

from ..http.server import Response
from ..models import Node
from ..store.sqlite import Store
from .routing import AliasRoute, Route, Routes

MAX_BODY = 1024 * 1024  # a body over this is recorded as its size
MAX_PENDING = 10_000  # requests waiting to be written; past that, samples are dropped
MAX_PENDING_BYTES = 64 * 1024 * 1024
log = logging.getLogger("jupyter_deploy.capture")


class Recorder:
    """Samples the requests of nodes whose route has a capture rule, and stores them."""

    def __init__(self, routes: Routes, store: Store, period_s: float = 0.5) -> None:
        self.routes = routes
        self.store = store
        self.period_s = period_s
        self.pending: list[tuple[Any, ...]] = []
        self.pending_bytes = 0
        self.dropped = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.flush()

    def watch(self, target: Route | AliasRoute, body: bytes, answer: Awaitable[Response],
              request_id: str | None = None) -> Awaitable[Response]:
        """`answer` itself, or wrapped so that its request is recorded when sampled."""
        if isinstance(target, Route):
            rule = target.capture
            if rule is None or random.random() * 100 >= rule["percent"]:
                return answer
        elif not any(self.routes.nodes[n].capture for n, _ in target.weights
                     if n in self.routes.nodes):
            return answer
        return self._record(target, body, answer, time.perf_counter(), request_id)

    async def _record(self, target: Route | AliasRoute, body: bytes,
                      answer: Awaitable[Response], started: float, request_id: str | None
                      ) -> Response:
        response = await answer
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        headers = response.headers or {}
        if isinstance(target, AliasRoute):  # sampled by the rule of the node that served
            route = self.routes.nodes.get(headers.get("x-node-id", ""))
            if route is None or route.capture is None or \
                    random.random() * 100 >= route.capture["percent"]:
                return response
            node = route.node
        else:
            node = target.node
        size = min(len(body), MAX_BODY) + min(len(response.body), MAX_BODY)
        if len(self.pending) >= MAX_PENDING or self.pending_bytes + size > MAX_PENDING_BYTES:
            self.dropped += 1
            return response
        self.pending_bytes += size
        self.pending.append((node, time.time(), request_id or headers.get("x-request-id"),
                             headers.get("x-instance-id"), response.status, latency_ms,
                             body, response.body))
        return response

    def flush(self) -> None:
        """Write what is pending; keep at most each node's `limit` rows."""
        rows, self.pending, self.pending_bytes = self.pending, [], 0
        if self.dropped:
            log.warning("request capture: %d sampled requests dropped (the buffer was full)",
                        self.dropped)
            self.dropped = 0
        rows = [r for r in rows if r[0] in self.routes.nodes]  # deleted meanwhile
        if not rows:
            return
        self.store.add_requests([(*r[:6], *_kept(r[6]), *_kept(r[7])) for r in rows])
        for node in {r[0] for r in rows}:
            rule = self.routes.nodes[node].capture
            if rule is not None:
                self.store.trim_requests(node, rule["limit"])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            try:
                self.flush()
            except Exception:  # a full disk must not stop capture for good
                log.exception("request capture: writing failed")


def _kept(body: bytes) -> tuple[bytes | None, int]:
    """A body as stored: itself, or nothing past `MAX_BODY`; and its size."""
    return (bytes(body) if len(body) <= MAX_BODY else None), len(body)


def captured(store: Store, node: Node, last: int) -> dict[str, Any]:
    """The node's `last` captured requests (newest last), with its declared fields."""
    checkpoint = store.checkpoint(node.checkpoint)
    return {
        "node": node.name,
        "capture": node.capture,
        "inputs": [f["name"] for f in checkpoint["inputs"]],
        "outputs": [f["name"] for f in checkpoint["outputs"]],
        "requests": [_request_json(row) for row in store.requests(node.name, last)],
    }


def _request_json(row: tuple[Any, ...]) -> dict[str, Any]:
    when, request_id, instance, status, latency_ms, sent, sent_size, got, got_size = row
    payload, answer = _load(sent), _load(got)
    item: dict[str, Any] = {
        "time": when, "request_id": request_id, "instance": instance, "status": status,
        "latency_ms": latency_ms,
        "input": payload.get("input") if isinstance(payload, dict) else None,
        "output": None, "error": None,
    }
    if status == 200 and isinstance(answer, dict):
        item["output"] = answer.get("output")
    elif got is not None:
        item["error"] = answer if answer is not None else got.decode(errors="replace")
    omitted = [f"{part} ({size} bytes)" for part, body, size in
               (("input", sent, sent_size), ("output", got, got_size)) if body is None]
    if omitted:
        item["omitted"] = f"not kept, over {MAX_BODY // 1024 ** 2} MB: {', '.join(omitted)}"
    return item


def _load(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
