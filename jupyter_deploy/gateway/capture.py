"""Request capture: a sampled share of a node's requests, with their answers, kept to look at.

On the request path the gateway only appends a tuple to a bounded buffer in memory (the
bodies as the bytes it has anyway, parsed only when read). The SQLite writes, with bodies of
up to 1 MB each, stay off the gateway's event loop (issue 10): a thread of the recorder's own,
with its own connection, writes the buffer in batches, every `period_s` or as soon as a batch
is big, and keeps at most `limit` rows per node. Bodies over `MAX_BODY` are kept as their size
only. The buffer is written on stop and before the captured requests are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..http.messages import Response
from ..models import Node
from ..store.sqlite import Store
from .routing import AliasRoute, Route, Routes

MAX_BODY = 1024 * 1024  # a body over this is recorded as its size
MAX_PENDING = 10_000  # requests waiting to be written; past that, samples are dropped
MAX_PENDING_BYTES = 64 * 1024 * 1024  # held in memory, being written included
BATCH_BYTES = 4 * 1024 * 1024  # a batch this big is written now, in one transaction
BATCH_ROWS = 500
log = logging.getLogger("jupyter_deploy.capture")
Answer = Coroutine[Any, Any, Response]


class Sampler:
    """Samples the requests of nodes whose route has a capture rule; `keep` holds them."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes

    def watch(self, target: Route | AliasRoute, body: bytes, answer: Answer,
              request_id: str | None = None) -> Answer:
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
                      answer: Answer, started: float, request_id: str | None
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
        self.keep((node, time.time(), request_id or headers.get("x-request-id"),
                   headers.get("x-instance-id"), response.status, latency_ms, body,
                   response.body))
        return response

    def keep(self, row: tuple[Any, ...]) -> None:
        """Hold a sampled request: (node, time, request id, instance, status, latency_ms,
        input body, output body)."""
        raise NotImplementedError


class Recorder(Sampler):
    """Samples the requests of nodes whose route has a capture rule, and stores them."""

    def __init__(self, routes: Routes, store: Store, period_s: float = 0.5) -> None:
        super().__init__(routes)
        self.store = store
        self.period_s = period_s
        self.pending: list[tuple[Any, ...]] = []
        self.pending_bytes = 0  # of the pending rows and of those being written
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._batch_ready = asyncio.Event()
        self._writing = asyncio.Lock()  # one batch at a time, in the order taken
        self._writer = Writer(store)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Write what is pending, then close the writer."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush()
        finally:
            await self._writer.close()

    def keep(self, row: tuple[Any, ...]) -> None:
        size = _held(row[6], row[7])
        if len(self.pending) >= MAX_PENDING or self.pending_bytes + size > MAX_PENDING_BYTES:
            self.dropped += 1
            return
        self.pending_bytes += size
        self.pending.append(row)
        if self.pending_bytes >= BATCH_BYTES or len(self.pending) >= BATCH_ROWS:
            self._batch_ready.set()

    async def flush(self) -> None:
        """Write what is pending, off the loop; return once it is in the store."""
        async with self._writing:
            rows, self.pending = self.pending, []
            if self.dropped:
                log.warning("request capture: %d sampled requests dropped (the buffer was "
                            "full)", self.dropped)
                self.dropped = 0
            size = sum(_held(r[6], r[7]) for r in rows)
            rows = [(*r[:6], *_kept(r[6]), *_kept(r[7])) for r in rows
                    if r[0] in self.routes.nodes]  # not of nodes deleted meanwhile
            limits = {r[0]: rule["limit"] for r in rows
                      if (rule := self.routes.nodes[r[0]].capture) is not None}
            try:
                if rows:
                    await self._writer.write(rows, limits)
            finally:
                self.pending_bytes -= size

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period_s):
                    await self._batch_ready.wait()
            self._batch_ready.clear()
            try:
                await self.flush()
            except Exception:  # a full disk must not stop capture for good
                log.exception("request capture: writing failed")


class Writer:
    """Writes captured requests in a thread of its own, on a connection of its own (a
    SQLite connection belongs to the thread that made it)."""

    def __init__(self, store: Store) -> None:
        self.path = store.db.execute("PRAGMA database_list").fetchone()[2]
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jupyter-deploy-capture")
        self._db: sqlite3.Connection | None = None

    async def write(self, rows: list[tuple[Any, ...]], limits: dict[str, int]) -> None:
        """Store (node, time, request_id, instance, status, latency_ms, input, input_size,
        output, output_size) rows; keep each node's newest `limit`."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._write, rows,
                                                         limits)

    async def close(self) -> None:
        """Close the connection, in its thread, and end the thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()

    def _write(self, rows: list[tuple[Any, ...]], limits: dict[str, int]) -> None:
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA synchronous=NORMAL")  # as the store's: WAL, no fsync each
        batches = _batches(rows)  # short transactions: the service's own writes wait on them
        for batch in batches[:-1]:
            _store(self._db, batch, {})
        _store(self._db, batches[-1], limits)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _store(db: sqlite3.Connection, rows: list[tuple[Any, ...]], limits: dict[str, int]
           ) -> None:
    """One transaction: the rows, then each node trimmed to its newest `limit` rows."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # A row goes in only while its node exists, and not into a node made again under the
        # same name after it: the delete may have come while the batch was on its way.
        db.executemany(
            "INSERT INTO requests (node, time, request_id, instance, status, latency_ms, "
            "input, input_size, output, output_size) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM nodes WHERE name = ? AND "
            "json_extract(data, '$.created') <= ?)", [(*r, r[0], r[1]) for r in rows])
        for node, keep in limits.items():
            db.execute("DELETE FROM requests WHERE node = ? AND seq <= (SELECT seq FROM "
                       "requests WHERE node = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                       (node, node, keep))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _batches(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Rows in runs of about `BATCH_BYTES` (stored rows: the bodies at 6 and 8)."""
    batches: list[list[tuple[Any, ...]]] = [[]]
    size = 0
    for row in rows:
        if batches[-1] and size >= BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += len(row[6] or b"") + len(row[8] or b"")
    return batches


def _held(sent: bytes, got: bytes) -> int:
    """What a captured request weighs in the buffer: its bodies, as far as they are kept."""
    return min(len(sent), MAX_BODY) + min(len(got), MAX_BODY)


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
