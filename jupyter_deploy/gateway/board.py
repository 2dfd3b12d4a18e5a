"""What the gateway workers of a host tell each other at once (issue 13): a shared-memory
board (`gateway/board`, 0600, mapped by every worker) where each worker writes, in a column
of its own, the requests it has in flight on each instance and the requests of each node
waiting in its queue, with the time its oldest one came.

Admission control then counts every worker's requests on an instance (an instance is sent
no more than its slots, whichever worker sends), and a free slot goes to the worker whose
waiting request is the oldest: one queue per node in effect, fair across the workers. Each
cell has one writer, so no lock is needed; a reader sees a value at most one write old.
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

MAX_WORKERS = 16
MAX_INSTANCES = 4096  # board rows of instances (indexes are reused as instances go)
MAX_NODES = 1024
_INT = 4
_FLOAT = 8
FLIGHTS = MAX_INSTANCES * MAX_WORKERS * _INT
QUEUES = MAX_NODES * MAX_WORKERS * _INT
SIZE = FLIGHTS + QUEUES + MAX_NODES * MAX_WORKERS * _FLOAT
NOBODY = float("inf")  # no request waiting


def create(path: Path) -> None:
    """A zeroed board (the service does this when no worker runs)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(descriptor, SIZE)
    finally:
        os.close(descriptor)


class Board:
    """One worker's view of the board: it writes its column, reads the others'."""

    def __init__(self, path: Path, column: int, workers: int) -> None:
        if not 0 <= column < MAX_WORKERS:
            raise ValueError(f"at most {MAX_WORKERS} gateway workers")
        descriptor = os.open(path, os.O_RDWR)
        try:
            self.map = mmap.mmap(descriptor, SIZE)
        finally:
            os.close(descriptor)
        self.column = column
        self.others = [w for w in range(min(workers, MAX_WORKERS)) if w != column]
        self.flights = memoryview(self.map)[:FLIGHTS].cast("i")
        self.queues = memoryview(self.map)[FLIGHTS:FLIGHTS + QUEUES].cast("i")
        self.heads = memoryview(self.map)[FLIGHTS + QUEUES:].cast("d")
        self.clear()

    def clear(self) -> None:
        """Zero this worker's column: a worker before it in this column may have died."""
        for row in range(MAX_INSTANCES):
            self.flights[row * MAX_WORKERS + self.column] = 0
        for row in range(MAX_NODES):
            self.queues[row * MAX_WORKERS + self.column] = 0
            self.heads[row * MAX_WORKERS + self.column] = 0.0

    # instances ---------------------------------------------------------------------------

    def fly(self, instance: int, count: int) -> None:
        """This worker has `count` requests in flight on the instance of that row."""
        if 0 <= instance < MAX_INSTANCES:
            self.flights[instance * MAX_WORKERS + self.column] = count

    def flying_elsewhere(self, instance: int) -> int:
        """Requests the other workers have in flight on the instance of that row."""
        if not 0 <= instance < MAX_INSTANCES:
            return 0
        base = instance * MAX_WORKERS
        return sum(self.flights[base + w] for w in self.others)

    # node queues -------------------------------------------------------------------------

    def queue(self, node: int, count: int, oldest: float) -> None:
        """This worker has `count` requests of the node waiting, the oldest since `oldest`
        (time.monotonic(), the same clock in every process)."""
        if 0 <= node < MAX_NODES:
            self.queues[node * MAX_WORKERS + self.column] = count
            self.heads[node * MAX_WORKERS + self.column] = oldest if count else 0.0

    def waiting_elsewhere(self, node: int) -> int:
        if not 0 <= node < MAX_NODES:
            return 0
        base = node * MAX_WORKERS
        return sum(self.queues[base + w] for w in self.others)

    def oldest_elsewhere(self, node: int) -> float:
        """When the oldest request of the node waiting in another worker came (NOBODY)."""
        if not 0 <= node < MAX_NODES:
            return NOBODY
        base = node * MAX_WORKERS
        heads = [self.heads[base + w] for w in self.others if self.queues[base + w]]
        return min(heads, default=NOBODY)

    def close(self) -> None:
        self.flights.release()
        self.queues.release()
        self.heads.release()
        self.map.close()


def now() -> float:
    """The board's clock."""
    return time.monotonic()
