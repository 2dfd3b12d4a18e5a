"""A runtime whose `alive()` never calls its engine: it reads a view of the engine's entries
(containers, Swarm tasks) that a background task refreshes every `poll_s` seconds. Runtimes
differ only in how they list their entries and how an entry tells running and exit code.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from typing import Generic, TypeVar

from ..models import Instance
from .base import Runtime

Entry = TypeVar("Entry")


class PolledRuntime(Runtime, Generic[Entry]):
    """The view, its poller and what `alive()` and `exit_code()` read of it."""

    listed = "entries"  # what a failed listing names in its warning

    def __init__(self, poll_s: float, log: logging.Logger) -> None:
        self.poll_s = poll_s
        self.log = log
        self._states: dict[str, Entry] = {}  # id -> its entry, as last seen
        self._fresh: set[str] = set()  # created since the last complete poll began
        self._poller: asyncio.Task[None] | None = None

    @abstractmethod
    async def _listing(self) -> dict[str, Entry]:
        """This service's entries as the engine lists them now, by id."""

    @abstractmethod
    def _running(self, entry: Entry) -> bool:
        """Whether the entry still runs (or may: starting counts)."""

    @abstractmethod
    def _code(self, entry: Entry) -> int | None:
        """The entry's exit code, once it has one."""

    async def _ending(self, ids: list[str]) -> None:  # noqa: B027 - most need not ask why
        """Learn why the entries `ids` stopped running, before `alive()` says so."""

    def alive(self, instance: Instance) -> bool:
        entry = self._states.get(instance.container_id)
        return entry is not None and self._running(entry)

    def exit_code(self, instance: Instance) -> int | None:
        entry = self._states.get(instance.container_id)
        return None if entry is None else self._code(entry)

    def _watch(self) -> None:
        """Keep `alive()` fresh from the first entry on."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self) -> None:
        """Keep `alive()`'s view fresh."""
        while True:
            await asyncio.sleep(self.poll_s)
            self._fresh.clear()
            try:
                states = await self._listing()
            except Exception:  # noqa: BLE001 - the engine hiccuped: keep the last view
                self.log.warning("cannot list %s", self.listed, exc_info=True)
                continue
            ended = [i for i, entry in states.items() if not self._running(entry)
                     and i in self._states and self._running(self._states[i])]
            if ended:
                await self._ending(ended)
            # created while the list was made (or since): no await from here to the swap
            for fresh in self._fresh & self._states.keys():
                states.setdefault(fresh, self._states[fresh])
            self._states = states
