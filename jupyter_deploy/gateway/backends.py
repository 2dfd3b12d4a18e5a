"""An instance as the gateway sends it requests, and a request's place in a node's queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..types import InputCheck
from .board import Board, now
from .upstream import Pool


@dataclass(eq=False)
class Backend:
    """A healthy instance, as the gateway sends it requests."""

    instance_id: str
    pool: Pool
    check: InputCheck  # the inputs of the checkpoint this instance runs (updates roll)
    # where its own metrics are: "" its /metrics, a URL elsewhere, None nowhere
    telemetry: str | None = ""
    local: int = 0  # requests this process has on it now
    # a request ran past the request timeout on it: out of balancing until the cell ends
    stuck: bool = False
    reported: int = 0  # requests the gateway workers say they have on it (gateway/hub.py)
    node: str = ""
    board: Board | None = None  # in a gateway worker: the others' requests on it, at once
    row: int = -1  # its row on the board

    @property
    def in_flight(self) -> int:
        """Requests on the instance now, here and in the other gateway processes."""
        if self.board is not None:
            return self.local + self.board.flying_elsewhere(self.row)
        return self.local + self.reported

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        self.add(value - self.in_flight)

    def add(self, count: int) -> None:
        """Count `count` more (or fewer) requests of this process on the instance."""
        self.local += count
        if self.board is not None:
            self.board.fly(self.row, self.local)


class Turn:
    """A request's place in a node's queue: woken for a slot, or refused."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.since = now()  # on the board's clock: the oldest waiter, in any worker, goes first
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(self) -> bool:
        return self.future.done()

    def woken(self) -> bool:
        return self.future.done() and not self.future.cancelled() and \
            self.future.exception() is None

    def set_result(self, value: None) -> None:
        self.future.set_result(value)

    def set_exception(self, exc: Exception) -> None:
        self.future.set_exception(exc)
