"""Adaptive batching in an instance (issue 18): one run of a batched cell serves many callers.

The gateway marks each request to a batching node with `x-batch: MAX_SIZE MAX_WAIT_MS` and its
time left, `x-deadline-ms`. Each request's inputs are checked on arrival, alone, so that a bad
one is refused without touching the others. A request that finds the instance idle runs at
once (c=1 is not slowed). Requests that arrive while the cell runs wait; when it is free, up
to MAX_SIZE of them run together: their array, list and DataFrame inputs stacked along the
first axis, the cell run once, its outputs split back into each caller's rows. When fewer are
waiting, the batch waits for more while they keep coming, at most MAX_WAIT_MS after the first
of them. Before a run, a caller whose deadline passed, or who went away, is answered without
it. Requests batch together only when their other (shared) inputs are equal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import error
from ..http.messages import Request, Response
from ..types.batching import Unbatchable, rows, split, stack, stacked
from .logs import begin_request, end_request

if TYPE_CHECKING:
    from .app import Worker

MAX_SIZE = 10_000  # callers in one run, at most, whatever a header says
MAX_WAIT_S = 10.0
QUIET_MIN_S = 0.00005  # the shortest lull that ends a wait for more callers
GAP_WEIGHT = 0.2  # of the newest gap between arrivals in their running mean
PREPARE_ON_LOOP = 1 << 20  # bodies bigger than this are decoded off the event loop
# the request bytes one batch may hold: 32 callers of 16 MB each would stack half a GB
MAX_BATCH_BYTES = 64 * 1024 * 1024
log = logging.getLogger("jupyter_deploy.worker")


@dataclass
class Caller:
    """One request waiting for its batch, its inputs checked and decoded."""

    request: Request
    values: dict[str, Any]
    rows: int
    key: tuple[Any, ...]  # the shared inputs: equal keys batch together
    arrived: float
    deadline: float
    max_size: int
    max_wait_s: float
    future: asyncio.Future[Response] = field(repr=False)


def settings(header: str) -> tuple[int, float] | None:
    """`MAX_SIZE MAX_WAIT_MS` from the gateway's `x-batch` header; None when it is not that."""
    try:
        size, wait_ms = header.split()
        max_size, max_wait_s = int(size), float(wait_ms) / 1000
    except ValueError:
        return None
    if not (1 <= max_size <= MAX_SIZE and 0 <= max_wait_s <= MAX_WAIT_S):
        return None
    return max_size, max_wait_s


def _shared_key(value: Any) -> Any:
    """A value to compare a shared input by (an unhashable one never equals another's)."""
    try:
        hash(value)
        return value
    except TypeError:
        pass
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return object()


class Batcher:
    """The callers waiting for a batched cell of one instance, and the loop that runs them."""

    def __init__(self, worker: Worker, stacked_inputs: list[str], shared_inputs: list[str]
                 ) -> None:
        self.worker = worker
        self.stacked = stacked_inputs
        self.shared = shared_inputs
        self.waiting: deque[Caller] = deque()
        self.came = asyncio.Event()
        self.busy = False  # a run is under way, or callers wait for one
        self.draining: asyncio.Task[None] | None = None  # runs the batches of those waiting
        self.last_arrival = 0.0
        self.gap_s = 0.0  # running mean of the time between arrivals

    @classmethod
    def of(cls, worker: Worker) -> Batcher | None:
        """The batcher of a checkpoint pinned with --batch; None for any other."""
        if not worker.meta.get("batch"):
            return None
        kinds = worker.input_check.fields
        names = [name for name, kind in kinds if stacked(kind)]
        if not names:
            return None
        return cls(worker, names, [name for name, kind in kinds if not stacked(kind)])

    async def submit(self, request: Request, size: int, wait_s: float) -> Response:
        """Answer one request from a batch run."""
        loop = asyncio.get_running_loop()
        arrived = time.monotonic()
        if len(request.body) <= PREPARE_ON_LOOP:
            prepared = self.prepare(request.body)
        else:
            prepared = await loop.run_in_executor(None, self.prepare, request.body)
        if isinstance(prepared, Response):
            self._count(0.0, prepared)
            return prepared
        values, count, key = prepared
        self._arrival(arrived)
        budget = request.headers.get("x-deadline-ms")
        try:
            deadline = arrived + float(budget) / 1000 if budget else float("inf")
        except ValueError:
            deadline = float("inf")
        caller = Caller(request, values, count, key, arrived, deadline, size, wait_s,
                        future=loop.create_future())
        if self.busy:
            self.waiting.append(caller)
            self.came.set()
            return await caller.future
        self.busy = True  # idle: it runs at once, alone, on its own hops (c=1 as unbatched)
        try:
            return (await self._run([caller]))[0]
        finally:
            if self.waiting:  # those that came meanwhile
                self.draining = loop.create_task(self._drain())
            else:
                self.busy = False

    def prepare(self, body: bytes) -> tuple[dict[str, Any], int, tuple[Any, ...]] | Response:
        """A request's decoded inputs, its rows and its shared inputs' key, or its refusal."""
        values = self.worker.prepare(body)
        if isinstance(values, Response):
            return values
        counts: list[tuple[str, int]] = []
        for name in self.stacked:
            try:
                counts.append((name, rows(values[name])))
            except Unbatchable as exc:
                return error("invalid_input", f"input.{name}: {exc}", field=f"input.{name}")
        for name, count in counts[1:]:
            if count != counts[0][1]:
                return error("invalid_input", f"input.{name} has {count} rows and "
                             f"input.{counts[0][0]} {counts[0][1]}: the array, list and "
                             "DataFrame inputs of a batched cell have the same number of rows",
                             field=f"input.{name}")
        key = tuple(_shared_key(values[name]) for name in self.shared)
        return values, counts[0][1], key

    def _count(self, waited_s: float, answer: Response) -> None:
        """Count an answer given without a run, on the cell thread (which alone writes the
        instance's figures)."""
        self.worker.executor.submit(self.worker.metrics.observe, waited_s, 0.0, answer)

    def _arrival(self, now: float) -> None:
        if self.last_arrival:
            gap = now - self.last_arrival
            self.gap_s = gap if not self.gap_s else self.gap_s + GAP_WEIGHT * (gap - self.gap_s)
        self.last_arrival = now

    async def _drain(self) -> None:
        """Run batches while callers wait; then the instance is idle again."""
        try:
            while self.waiting:
                await self._gather(self.waiting[0])
                batch = self._take()
                if not batch:
                    continue
                answers = await self._run(batch)
                for caller, answer in zip(batch, answers, strict=True):
                    if not caller.future.done():
                        caller.future.set_result(answer)
        finally:
            self.busy = False
            self.draining = None
            for caller in self.waiting:  # cancelled: the instance is stopping
                if not caller.future.done():
                    caller.future.set_result(error("unavailable", "the instance is stopping"))
            self.waiting.clear()

    async def _run(self, batch: list[Caller]) -> list[Response]:
        """Each caller's answer from one run on the cell thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.worker.executor, run_batch, self.worker, batch)
        except Exception:  # noqa: BLE001 - every caller still gets an answer
            log.exception("a batch of %d failed", len(batch))
            return [error("internal", "the batch failed")] * len(batch)
        finally:
            if self.worker.poisoned and self.worker.stop is not None:
                self.worker.stop.set()

    async def _gather(self, first: Caller) -> None:
        """Wait for more callers while fewer than `first.max_size` wait: at most its max wait
        after it came, and no longer than a lull of twice the usual gap between arrivals."""
        while len(self.waiting) < first.max_size:
            quiet = min(first.max_wait_s, max(2 * self.gap_s, QUIET_MIN_S))
            until = min(first.arrived + first.max_wait_s, self.last_arrival + quiet)
            left = until - time.monotonic()
            if left <= 0:
                return
            self.came.clear()
            try:
                async with asyncio.timeout(left):
                    await self.came.wait()
            except TimeoutError:
                return

    def _take(self) -> list[Caller]:
        """The next batch: up to the first caller's max size (and MAX_BATCH_BYTES) of those
        whose shared inputs equal its own; those whose deadline passed, or who went away,
        are answered now."""
        now = time.monotonic()
        batch: list[Caller] = []
        kept: deque[Caller] = deque()
        size = 0
        while self.waiting:
            caller = self.waiting.popleft()
            if caller.deadline <= now or caller.request.abandoned:
                self._drop(caller)
            elif not batch or (len(batch) < batch[0].max_size and caller.key == batch[0].key
                               and size + len(caller.request.body) <= MAX_BATCH_BYTES):
                batch.append(caller)
                size += len(caller.request.body)
            else:
                kept.append(caller)
        self.waiting = kept
        return batch

    def _drop(self, caller: Caller) -> None:
        if caller.request.abandoned:
            answer = error("abandoned", "the caller went away")
        else:
            answer = error("timeout", "the request's deadline passed while it waited for its "
                           "batch; it was not run")
        self._count(time.monotonic() - caller.arrived, answer)
        if not caller.future.done():  # done: its handler was cancelled
            caller.future.set_result(answer)


def run_batch(worker: Worker, batch: list[Caller]) -> list[Response]:
    """Run the cell once on the batch's stacked inputs; each caller's answer (on the cell
    thread). The cell's prints are logged with the first caller's request id."""
    started = worker.running_since = time.monotonic()
    begin_request(batch[0].request.headers.get("x-request-id"))
    try:
        answers = _run(worker, batch)
    finally:
        end_request()
        worker.running_since = None
    ran_s = time.monotonic() - started
    worker.metrics.batch(len(batch))
    for caller, answer in zip(batch, answers, strict=True):
        worker.metrics.observe(started - caller.arrived, ran_s, answer)
    return answers


def _run(worker: Worker, batch: list[Caller]) -> list[Response]:
    namespace = worker.namespace
    namespace.update(batch[0].values)  # the shared inputs are the same for all of them
    batcher = worker.batcher
    assert batcher is not None
    for name in batcher.stacked:
        namespace[name] = stack([caller.values[name] for caller in batch])
    failed = worker.run_cell() or worker.missing_output()
    if failed is not None:
        return [failed] * len(batch)  # the cell's error, for each of its callers
    counts = [caller.rows for caller in batch]
    parts: dict[str, list[Any]] = {}
    for output in worker.meta["outputs"]:
        name = output["name"]
        try:
            parts[name] = split(namespace[name], counts)
        except Unbatchable as exc:
            refusal = error("invalid_output", f"output `{name}` cannot be split into each "
                            f"caller's rows: {exc}", field=f"output.{name}")
            return [refusal] * len(batch)
    return [worker.outputs({name: part[i] for name, part in parts.items()},
                           caller.request.headers.get("x-array-encoding", "list"))
            for i, caller in enumerate(batch)]
