"""The gateway in worker processes of its own (issue 13): the processes (fleet.py) and the
channel that feeds them the routes and brings back what they learn (hub.py), as the deploy
service uses them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .capture import Recorder
from .channel import socket_path, token
from .fleet import Fleet, metrics_dir
from .hub import Hub, Peer
from .routing import Routes

READY_TIMEOUT_S = 60.0  # for every worker to connect and listen, at the service's start


class GatewayWorkers:
    """`count` gateway workers serving the routes of a deploy service."""

    def __init__(self, state_dir: Path, count: int, settings: dict[str, Any], routes: Routes,
                 describe: Callable[[], dict[str, Any]], recorder: Recorder,
                 note: Callable[[str, str], None], log: logging.Logger) -> None:
        self.state_dir = Path(state_dir)
        self.fleet = Fleet(self.state_dir, count, settings, log)
        self.routes, self.describe, self.recorder, self.note = routes, describe, recorder, note
        self.log = log
        self.hub: Hub | None = None
        self._joined = asyncio.Event()

    @property
    def port(self) -> int:
        return int(self.fleet.settings["port"])

    @property
    def metrics_dir(self) -> str:
        """Where the workers keep their counters (prometheus_client's multiprocess mode)."""
        return str(metrics_dir(self.state_dir))

    @property
    def grpc_port(self) -> int:
        return int(self.fleet.settings["grpc_port"])

    async def start(self) -> None:
        """Take back the workers still running, start the others; return once every one
        listens (the ports are the running workers' when the asked ones are 0)."""
        self.fleet.prepare()
        self.hub = Hub(socket_path(self.state_dir), token(self.state_dir), self.routes,
                       self.describe, self.recorder, self.note, self.fleet.config, self.log)
        self.hub.on_peer = self._peer_changed
        await self.hub.start()
        self.fleet.start()
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while not self.ready():
                    self._joined.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await self._joined.wait()
                    if self.fleet.restarts >= 2 * self.fleet.count:
                        raise TimeoutError  # they die as they start: no use waiting
        except TimeoutError:
            await self.stop(everything=True)
            raise RuntimeError(f"the gateway workers did not start: see "
                               f"{self.state_dir / 'gateway'}/worker-*.log") from None
        self.fleet.release()
        adopted = len(self.fleet.adopted)
        self.log.info("jupyter_deploy: %d gateway workers (%d taken back)", self.fleet.count,
                      adopted)

    def ready(self) -> bool:
        """Whether each slot has a worker of the current settings that listens."""
        assert self.hub is not None
        serving = {p.slot for p in self.hub.peers.values()
                   if p.serving and p.config == self.fleet.config}
        return serving >= set(range(self.fleet.count))

    def _peer_changed(self, peer: Peer | None) -> None:
        self._joined.set()

    def changed(self) -> None:
        """Send the routes at the end of this loop turn."""
        if self.hub is not None:
            self.hub.publish()

    def publish(self) -> None:
        """Send the routes to every worker now (before a control-API call returns)."""
        if self.hub is not None:
            self.hub.publish_now()

    async def synced(self, timeout_s: float = 2.0) -> bool:
        """Whether every worker applied the routes sent last, waiting `timeout_s` at most."""
        return self.hub is None or await self.hub.synced(timeout_s)

    async def reports(self, timeout_s: float = 2.0) -> bool:
        """Whether what the workers reported so far came in (the captured requests)."""
        return self.hub is None or await self.hub.reports(timeout_s)

    def status(self) -> list[dict[str, Any]]:
        """Each worker: its slot, pid, whether it is connected and listens, its routes."""
        peers = {p.slot: p for p in self.hub.peers.values()} if self.hub else {}
        return [{"slot": slot, "pid": pid, "connected": slot in peers,
                 "serving": slot in peers and peers[slot].serving,
                 "routes_version": peers[slot].version if slot in peers else None,
                 "taken_back": slot in self.fleet.adopted}
                for slot, pid in sorted(self.fleet.pids.items())]

    async def stop(self, everything: bool = False) -> None:
        """Close the channel; the workers serve on from the routes they have, unless
        `everything`: then they stop (after the answers in flight)."""
        if self.hub is not None:
            if everything:
                self.hub.stop_workers()
            await self.hub.stop()
        await self.fleet.stop(everything)
