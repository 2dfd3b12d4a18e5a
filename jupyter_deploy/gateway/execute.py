"""Sending requests to a node's instances: the one retry loop, and the execute path of
checkpoint nodes and aliases (REST and gRPC alike).

A request goes to the least-loaded healthy instance (or the one its sticky key ranks first);
it is tried on another only when nothing of it was sent, so a cell never runs twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import error, status_of, too_large, unavailable, upstream_failure
from ..http.client import ResponseTooLarge, UpstreamError
from ..http.messages import Response
from ..types import invalid_input_body
from .routing import MAX_BYTES, AliasRoute, Backend, Route, Routes, sticky_point
from .upstream import SendFailed

EXECUTE_HEAD = b"POST /execute HTTP/1.1\r\nHost: instance\r\nContent-Type: application/json\r\n"
UPSTREAM_ERRORS = (TimeoutError, ResponseTooLarge, UpstreamError)  # sent, and no answer
MAX_JSON_DEPTH = 64  # arrays and objects in arrays and objects: deeper bodies get 400
MAX_MIRRORS = 64  # shadow requests under way at once; past that, requests are not mirrored


class NoInstance(Exception):
    """No healthy instance could take the request."""


class InvalidRequest(Exception):
    """The input does not fit the checkpoint of the instance picked to run it."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors


async def send(route: Route, head: bytes, body: bytes, deadline: float, *,
               key: str | None = None, hold: bool = False,
               admit: Callable[[Backend], None] | None = None
               ) -> tuple[int, dict[str, str], bytes, Backend]:
    """Send `head` (without Content-Length) and `body` to an instance of the node, by the
    loop's `deadline`; retry elsewhere only if nothing was sent.

    A node scaled to zero holds the request until an instance is ready, when `hold`.
    `admit` may refuse the picked instance by raising (the input does not fit its checkpoint).
    Raises NoInstance, or what `UPSTREAM_ERRORS` lists once the request was sent.
    """
    loop = asyncio.get_running_loop()
    tried: set[str] = set()
    while True:
        backend = route.pick(tried, key)
        if backend is None:
            if tried or not (route.hold and hold):
                raise NoInstance(route.node)
            await _hold(route, deadline - loop.time())
            continue
        if admit is not None:
            admit(backend)
        tried.add(backend.instance_id)
        backend.in_flight += 1
        try:
            async with asyncio.timeout_at(deadline):
                status, headers, data = await backend.pool.request(head, body)
            return status, headers, data, backend
        except SendFailed:
            continue
        finally:
            backend.in_flight -= 1


async def _hold(route: Route, timeout: float) -> None:
    route.waiting += 1
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await route.added.wait()
    except TimeoutError:
        raise NoInstance(route.node) from None
    finally:
        route.waiting -= 1


def _payload(body: bytes) -> tuple[Any, Response | None]:
    try:
        payload = json.loads(body)
        # counting brackets is C-fast; only a body that may nest that deep is walked
        if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH or _within(payload):
            return payload, None
    except ValueError as exc:
        return None, error("malformed_json", f"the body is not valid JSON: {exc}", field="body")
    except RecursionError:
        pass
    return None, error("malformed_json", f"the body nests deeper than {MAX_JSON_DEPTH} levels "
                       "(max_json_depth)", field="body")


def _within(payload: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether no array or object nests deeper than `limit`."""
    level = [payload] if isinstance(payload, list | dict) else []
    for _ in range(limit):
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c)
                 if isinstance(v, list | dict)]
        if not level:
            return True
    return False


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


async def _forward(route: Route, body: bytes, payload: Any, timeout_s: float, key: str | None,
                   extra: dict[str, str], hold: bool = True, passed_on: bytes = b"",
                   request_id: str = "", limit: int = MAX_BYTES) -> Response | None:
    """Run the cell on an instance of the node; None when it has no healthy instance.

    The input is checked against the picked instance's checkpoint (during an update,
    instances of two checkpoints serve). The instance logs what the cell prints with
    `request_id`. `extra`: headers of the answer (through an alias, the node that answered).
    """
    if route.hold and not hold and not route.backends:
        route.missed += 1  # demand all the same: the node scales up from zero
    head = EXECUTE_HEAD + passed_on
    if request_id:  # ids are checked: [A-Za-z0-9._-]
        head += b"x-request-id: %s\r\n" % request_id.encode()

    def admit(backend: Backend) -> None:
        errors = backend.check(payload)
        if errors:
            raise InvalidRequest(errors)

    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        status, _, data, backend = await send(route, head, body, deadline, key=key, hold=hold,
                                              admit=admit)
    except NoInstance:
        return None
    except InvalidRequest as exc:
        return Response(status_of("invalid_input"),
                        json.dumps(invalid_input_body(exc.errors)).encode(), extra or None)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, limit, extra or None)
    if len(data) > limit:
        return too_large(len(data), limit, extra or None)
    return Response(status, data, {**extra, "x-instance-id": backend.instance_id})


async def execute(routes: Routes, route: Route, body: bytes, timeout_s: float,
                  headers: dict[str, str] | None = None, *, request_id: str = "",
                  limit: int = MAX_BYTES) -> Response:
    """Check a request body and run it on the node (`limit`: bytes of the answer)."""
    payload, problem = _payload(body)
    if problem:
        return problem
    headers = headers or {}
    key = _sticky_key(route.sticky, headers, payload)
    response = await _forward(route, body, payload, timeout_s, key, {},
                              passed_on=_passed_on(headers), request_id=request_id, limit=limit)
    return response or unavailable(f"node {route.node!r}")


async def execute_alias(routes: Routes, alias: AliasRoute, body: bytes, headers: dict[str, str],
                        timeout_s: float, *, request_id: str = "", limit: int = MAX_BYTES,
                        mirrors: Mirrors | None = None) -> Response:
    """Pick a node by weight (or by sticky key); if it has no healthy instance, the others;
    a node scaled to zero holds the request only when no node of the alias can serve now.
    One deadline for it all. A share of the requests is mirrored to the shadow node, by
    `mirrors`."""
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
            response = await _forward(route, body, payload, deadline - loop.time(), node_key,
                                      {"x-node-id": node}, hold, passed_on, request_id, limit)
            if response is not None:
                break
        if response is not None:
            break
    if response is None:
        return unavailable(f"alias {alias.name!r}")
    shadow = alias.shadow
    if shadow and mirrors is not None and random.random() * 100 < shadow["percent"]:
        mirrors.start(_mirror(routes, alias, body, payload, response, timeout_s, request_id))
    return response


class Mirrors:
    """The shadow requests of one gateway under way: kept from the GC, cancelled with it."""

    def __init__(self, limit: int = MAX_MIRRORS) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def start(self, mirror: Coroutine[Any, Any, None]) -> None:
        """Run `mirror` in the background, unless too many are under way or it is closed."""
        if self.closed or len(self.tasks) >= self.limit:
            mirror.close()
            return
        task = asyncio.ensure_future(mirror)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Cancel what is under way and start nothing more."""
        self.closed = True
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _mirror(routes: Routes, alias: AliasRoute, body: bytes, payload: Any,
                  primary: Response, timeout_s: float, request_id: str = "") -> None:
    """Send a copy to the shadow node; record its answer beside the primary's, return nothing."""
    node = alias.shadow["node"]  # type: ignore[index]
    route = routes.nodes.get(node)
    started = time.perf_counter()
    response = None if route is None else await _forward(route, body, payload, timeout_s, None,
                                                          {}, False, request_id=request_id)
    response = response or unavailable(f"node {node!r}")
    alias.shadow_record.add({
        "time": time.time(),
        "node": node,
        "status": response.status,
        "primary_status": primary.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        # both bodies come from the same serializer: equal outputs are equal bytes
        "same_output": response.status == primary.status and response.body == primary.body,
    })
