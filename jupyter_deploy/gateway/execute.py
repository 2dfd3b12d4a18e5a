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
from .routing import (
    MAX_BYTES,
    WAIT_SHARE,
    AliasRoute,
    Backend,
    QueueFull,
    Route,
    Routes,
    sticky_point,
)
from .upstream import SendFailed

EXECUTE_HEAD = b"POST /execute HTTP/1.1\r\nHost: instance\r\nContent-Type: application/json\r\n"
UPSTREAM_ERRORS = (TimeoutError, ResponseTooLarge, UpstreamError)  # sent, and no answer
MAX_JSON_DEPTH = 64  # arrays and objects in arrays and objects: deeper bodies get 400
ARRAY_ENCODINGS = ("list", "base64")  # the values of `x-array-encoding` (its enum)
STUCK_SHARE = 0.9  # of the request timeout spent on an instance that makes it stuck
MAX_MIRRORS = 64  # shadow requests under way at once; past that, requests are not mirrored
NOT_RUN = (429, 503, 504)  # the gateway's answers for a request no cell answered in time


class NoInstance(Exception):
    """No healthy instance could take the request."""


class Overdue(Exception):
    """The request's deadline passed while it waited in the queue: it was never sent (504)."""


class InvalidRequest(Exception):
    """The input does not fit the checkpoint of the instance picked to run it."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors


async def send(route: Route, head: bytes, body: bytes, deadline: float, *,
               key: str | None = None, hold: bool = False,
               admit: Callable[[Backend], None] | None = None, queue: bool = False,
               stuck_after_s: float | None = None
               ) -> tuple[int, dict[str, str], bytes, Backend]:
    """Send `head` (without Content-Length) and `body` to an instance of the node, by the
    loop's `deadline`; retry elsewhere only if nothing was sent.

    A node scaled to zero holds the request until an instance is ready, when `hold`.
    `admit` may refuse the picked instance by raising (the input does not fit its checkpoint).
    With `queue`, an instance is sent `route.slots` requests at once and the others wait in
    the node's bounded queue: QueueFull past its bound, Overdue when the deadline passes in
    it (never sent). A request on an instance for `stuck_after_s` takes it out of balancing.
    Raises NoInstance, or what `UPSTREAM_ERRORS` lists once the request was sent.
    """
    loop = asyncio.get_running_loop()
    tried: set[str] = set()
    woken = False
    while True:
        backend = route.pick(tried, key)
        if backend is None and not (queue and route.has_instance(tried)):
            if tried or not (route.hold and hold):
                raise NoInstance(route.node)
            await _hold(route, deadline - loop.time())
            continue
        if queue and (backend is None or not route.free(backend) or not woken and (
                route.queue or route.first_elsewhere())):
            await _wait_turn(route, deadline, woken)
            woken = True
            continue
        assert backend is not None  # without `queue`, a None went to NoInstance above
        if queue and loop.time() >= deadline:
            raise Overdue(route.node)  # its turn came too late: do not run it for no one
        if admit is not None:
            admit(backend)
        tried.add(backend.instance_id)
        try:
            status, headers, data = await _attempt(route, backend, head, body, deadline,
                                                   stuck_after_s)
        except SendFailed:
            continue
        return status, headers, data, backend


async def _attempt(route: Route, backend: Backend, head: bytes, body: bytes, deadline: float,
                   stuck_after_s: float | None) -> tuple[int, dict[str, str], bytes]:
    """One try on `backend`; its time there counts into the node's mean service time."""
    loop = asyncio.get_running_loop()
    backend.add(1)
    sent = loop.time()
    if route.batch_head:  # the instance drops a caller whose deadline passed (issue 18)
        head += route.batch_head + b"x-deadline-ms: %d\r\n" % int((deadline - sent) * 1000)
    try:
        async with asyncio.timeout_at(deadline):
            answer = await backend.pool.request(head, body)
    except TimeoutError:
        route.served(loop.time() - sent, answered=False)  # at least this long: errs high
        # on the instance for (about) the whole request timeout, not after a wait
        if stuck_after_s is not None and loop.time() - sent >= STUCK_SHARE * stuck_after_s:
            route.on_stuck(backend)
        raise
    finally:
        backend.add(-1)
        route.wake_waiters()  # its slot is free
    route.served(loop.time() - sent)
    return answer


async def _wait_turn(route: Route, deadline: float, first: bool) -> None:
    """Wait in the node's queue, or be refused at once when it is full or its wait would
    take much of the time the request has left (it could not be served in time)."""
    left = deadline - asyncio.get_running_loop().time()
    if not first and (route.queued() >= route.queue_limit
                      or route.expected_wait() > WAIT_SHARE * left):
        raise QueueFull(route.node)
    try:
        await route.wait_turn(deadline, first)
    except TimeoutError:
        raise Overdue(route.node) from None


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
                   request_id: str = "", limit: int = MAX_BYTES, *, reveal: bool = True,
                   stuck_after_s: float | None = None) -> Response | None:
    """Run the cell on an instance of the node; None when it has no healthy instance.

    The input is checked against the picked instance's checkpoint (during an update,
    instances of two checkpoints serve). The instance logs what the cell prints with
    `request_id`. `extra`: headers of the answer (through an alias, the node that answered).
    `reveal`: the caller may see the cell's traceback (else only when the node exposes it).
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
                                              admit=admit, queue=True,
                                              stuck_after_s=stuck_after_s)
    except NoInstance:
        return None
    except (QueueFull, Overdue) as exc:
        return _refused(route, exc, extra)
    except InvalidRequest as exc:
        return Response(status_of("invalid_input"),
                        json.dumps(invalid_input_body(exc.errors)).encode(), extra or None)
    except UPSTREAM_ERRORS as exc:
        return upstream_failure(exc, limit, extra or None)
    if len(data) > limit:
        return too_large(len(data), limit, extra or None)
    if status == 500 and not (reveal or route.expose_tracebacks):
        data = _without_traceback(data)
    return Response(status, data, {**extra, "x-instance-id": backend.instance_id})


def _refused(route: Route, exc: QueueFull | Overdue, extra: dict[str, str]) -> Response:
    """429 (come back later) or 504 (the deadline passed in the queue): never run."""
    if isinstance(exc, QueueFull):
        route.reject("queue_full")
        return error("queue_full", f"node {route.node!r} has {route.queued()} requests "
                     "waiting already; retry later", headers={**extra, "Retry-After": "1"})
    route.reject("overdue")
    return error("timeout", "the request waited in the node's queue past its deadline; it "
                 "was not run", headers=extra or None)


def _without_traceback(data: bytes) -> bytes:
    """A cell's error for an anonymous caller: its name and message, not its traceback."""
    try:
        answer = json.loads(data)
    except ValueError:
        return data
    if not isinstance(answer, dict) or "traceback" not in answer:
        return data
    answer.pop("traceback")
    return json.dumps(answer).encode()


def _array_encoding(headers: dict[str, str]) -> Response | None:
    """400 when `x-array-encoding` is not one its document lists."""
    value = headers.get("x-array-encoding")
    if value is None or value in ARRAY_ENCODINGS:
        return None
    return error("bad_request", f"x-array-encoding must be one of {', '.join(ARRAY_ENCODINGS)}",
                 field="x-array-encoding")


async def execute(routes: Routes, route: Route, body: bytes, timeout_s: float,
                  headers: dict[str, str] | None = None, *, request_id: str = "",
                  limit: int = MAX_BYTES, stuck_after_s: float | None = None) -> Response:
    """Check a request body and run it on the node (`limit`: bytes of the answer)."""
    headers = headers or {}
    payload, problem = _payload(body)
    problem = problem or _array_encoding(headers)
    if problem:
        return problem
    key = _sticky_key(route.sticky, headers, payload)
    response = await _forward(route, body, payload, timeout_s, key, {},
                              passed_on=_passed_on(headers), request_id=request_id, limit=limit,
                              stuck_after_s=stuck_after_s)
    return response or unavailable(f"node {route.node!r}")


async def execute_alias(routes: Routes, alias: AliasRoute, body: bytes, headers: dict[str, str],
                        timeout_s: float, *, request_id: str = "", limit: int = MAX_BYTES,
                        mirrors: Mirrors | None = None, reveal: bool = True,
                        stuck_after_s: float | None = None) -> Response:
    """Pick a node by weight (or by sticky key); if it has no healthy instance (or its queue
    is full), the others; a node scaled to zero holds the request only when no node of the
    alias can serve now. One deadline for it all. A share of the requests is mirrored to
    the shadow node, by `mirrors`. `reveal`: the caller holds a key (it sees tracebacks)."""
    payload, problem = _payload(body)
    problem = problem or _array_encoding(headers)
    if problem:
        return problem
    key = _sticky_key(alias.sticky, headers, payload)
    passed_on = _passed_on(headers)
    point = sticky_point(key) if key is not None else random.random() * 100
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    response = refused = None
    for hold in (False, True):
        for node in alias.order(point):
            route = routes.nodes.get(node)
            if route is None or (hold and not route.hold):
                continue
            node_key = key if key is not None else _sticky_key(route.sticky, headers, payload)
            response = await _forward(route, body, payload, deadline - loop.time(), node_key,
                                      {"x-node-id": node}, hold, passed_on, request_id, limit,
                                      reveal=reveal, stuck_after_s=stuck_after_s)
            if response is not None and response.status == 429:
                refused, response = response, None  # full: another node may serve
            if response is not None:
                break
        if response is not None:
            break
    response = response or refused
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
    entry = {
        "time": time.time(),
        "node": node,
        "status": response.status,
        "primary_status": primary.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        # both bodies come from the same serializer: equal outputs are equal bytes; a copy
        # the shadow node refused or did not answer in time has no output to compare
        "same_output": None if response.status in NOT_RUN else (
            response.status == primary.status and response.body == primary.body),
    }
    alias.shadow_record.add(entry)
    for listener in routes.on_shadow:  # a gateway worker tells the service
        listener(alias.name, entry)
