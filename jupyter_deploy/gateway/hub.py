"""The service's end of the channel to its gateway workers (issue 13).

Every change of the service's routes is sent whole to every worker (`publish`, coalesced to
one per loop turn; `publish_now` before a control-API call returns). What the gateway learns
comes back and lands where an in-process gateway would have put it: in-flight and held
requests on the service's routes (the autoscaler and the drain read them), stuck instances
(the supervisor), captured requests (the recorder), shadow comparisons, metric clashes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capture import Recorder
from .channel import Channel, ChannelClosed, opens
from .routing import Route, Routes, applied_at_once

ACK_TIMEOUT_S = 2.0  # a worker that does not apply a state by then is not waited for


@dataclass(eq=False)
class Peer:
    """A connected gateway worker."""

    channel: Channel
    pid: int
    slot: int
    config: str
    version: int = 0  # of the last state it applied
    serving: bool = False  # it listens on the gateway's ports
    pong: int = 0  # the last ping it answered
    # node -> [requests held, {instance id: requests in flight}], as it last said
    load: dict[str, list[Any]] = field(default_factory=dict)


class Hub:
    """Accepts the workers' channels, sends them the routes, takes in what they report."""

    def __init__(self, path: Path, token: str, routes: Routes,
                 describe: Callable[[], dict[str, Any]], recorder: Recorder,
                 note: Callable[[str, str], None], config: str,
                 log: logging.Logger) -> None:
        self.path = path
        self.token = token
        self.routes = routes
        self.describe = describe  # the whole routing state, as data
        self.recorder = recorder
        self.note = note  # (node, message): an event on the node
        self.config = config  # digest of the workers' settings: others are told to stop
        self.log = log
        self.peers: dict[int, Peer] = {}  # pid -> peer
        self.version = 0
        self.pings = 0
        self.noted: set[tuple[str, str]] = set()  # (node, message) told already
        self.on_peer: Callable[[Peer | None], None] = lambda peer: None  # joined or left
        self._scheduled = False
        self._acked = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a service that was killed
        self._server = await asyncio.start_unix_server(self._serve, self.path,
                                                       limit=1 << 20)
        self.path.chmod(0o600)
        self.routes.on_change = self.publish
        self.routes.applied = self.applied

    async def stop(self) -> None:
        """Close the channels; the workers keep serving from the last state they had."""
        self.routes.on_change = lambda: None
        self.routes.applied = applied_at_once
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers.values()):
            peer.channel.close()  # its task ends on its own: a cancelled one is logged
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # routes out -------------------------------------------------------------------------------

    def publish(self) -> None:
        """Send the routes at the end of this loop turn (once for a burst of changes)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._publish_scheduled)

    def _publish_scheduled(self) -> None:
        if self._scheduled:  # else sent already, by publish_now
            self.publish_now()

    def publish_now(self) -> None:
        """Send the whole routing state to every worker now."""
        self._scheduled = False
        self.version += 1
        message = {"t": "state", "version": self.version, "state": self.describe()}
        for peer in list(self.peers.values()):
            peer.channel.send(message)

    async def synced(self, timeout_s: float = ACK_TIMEOUT_S) -> bool:
        """Whether every connected worker applied the latest state, waiting `timeout_s`."""
        return await self._heard(
            lambda: all(p.version >= self.version for p in self._current()), timeout_s)

    async def applied(self) -> bool:
        """Send the routes now if a change waits, and wait until every worker applied them;
        the in-flight counts each worker sent with its ack are then current (a drain)."""
        if self._scheduled:
            self.publish_now()
        return await self.synced()

    async def reports(self, timeout_s: float = ACK_TIMEOUT_S) -> bool:
        """Whether what every worker reported so far (captured requests, shadow answers)
        has come in, waiting `timeout_s` at most: a ping after it, answered."""
        self.pings += 1
        for peer in list(self.peers.values()):
            peer.channel.send({"t": "ping", "n": self.pings})
        return await self._heard(lambda: all(p.pong >= self.pings for p in self._current()),
                                 timeout_s)

    async def _heard(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done():
            heard = self._acked  # a new event each time a worker answers: none is missed
            try:
                async with asyncio.timeout_at(deadline):
                    await heard.wait()
            except TimeoutError:
                return False
        return True

    def _answered(self) -> None:
        self._acked.set()
        self._acked = asyncio.Event()

    def _current(self) -> list[Peer]:
        """The workers of the current settings (the others are being replaced)."""
        return [p for p in self.peers.values() if p.config == self.config]

    def stop_workers(self) -> None:
        """Tell every connected worker to stop serving and exit."""
        for peer in list(self.peers.values()):
            peer.channel.send({"t": "stop"})

    # reports in -------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        channel = Channel(reader, writer)
        peer = None
        try:
            async with asyncio.timeout(5.0):
                hello = await channel.receive()
            if hello.get("t") != "hello" or not opens(hello.get("token"), self.token):
                self.log.warning("gateway channel: a peer without the token was refused")
                return
            peer = Peer(channel, int(hello["pid"]), int(hello["slot"]), str(hello["config"]),
                        serving=bool(hello.get("serving")))
            self.peers[peer.pid] = peer
            self.on_peer(peer)
            if peer.config != self.config:  # started with other settings: replaced
                channel.send({"t": "stop"})
            else:
                channel.send({"t": "state", "version": self.version,
                              "state": self.describe()})
            while True:
                self._take(peer, await channel.receive())
        except (ChannelClosed, TimeoutError, KeyError, ValueError, TypeError):
            pass
        finally:
            channel.close()
            if peer is not None and self.peers.get(peer.pid) is peer:
                del self.peers[peer.pid]
                self._loads(peer, {})
                self.on_peer(None)
            self._tasks.discard(task)

    def _take(self, peer: Peer, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "ack":  # with its load as it was when it applied the state
            self._loads(peer, message.get("nodes", peer.load))
            peer.version = int(message["version"])
            self._answered()
        elif kind == "pong":
            peer.pong = int(message["n"])
            self._answered()
        elif kind == "serving":
            peer.serving = True
            self.on_peer(peer)
        elif kind == "load":
            self._loads(peer, message["nodes"])
        elif kind == "stuck":
            route = self.routes.nodes.get(message["node"])
            backend = route.backends.get(message["instance"]) if route else None
            if route is not None and backend is not None:
                self.routes.stuck(route, backend)
        elif kind == "capture":
            row = message["row"]
            self.recorder.keep((*row[:6], base64.b64decode(row[6]), base64.b64decode(row[7])))
        elif kind == "shadow":
            alias = self.routes.aliases.get(message["alias"])
            if alias is not None:
                alias.shadow_record.add(message["entry"])
        elif kind == "note":  # each worker finds it: told once
            told = (message["node"], message["message"])
            self.noted = {n for n in self.noted if n[0] in self.routes.nodes}
            if told not in self.noted and told[0] in self.routes.nodes:
                self.noted.add(told)
                self.note(*told)
        elif kind == "missed":
            route = self.routes.nodes.get(message["node"])
            if route is not None:
                route.missed += int(message["count"])

    def _loads(self, peer: Peer, load: dict[str, list[Any]]) -> None:
        """Sum what the workers hold and have in flight into the service's routes."""
        touched = set(peer.load) | set(load)
        peer.load = load
        for name in touched:
            route = self.routes.nodes.get(name)
            if route is not None:
                self._sum(route, name)

    def _sum(self, route: Route, name: str) -> None:
        held, flights = 0, dict[str, int]()
        for peer in self.peers.values():
            entry = peer.load.get(name)
            if entry:
                held += entry[0]
                for instance, count in entry[1].items():
                    flights[instance] = flights.get(instance, 0) + count
        route.reported = held
        for instance_id, backend in list(route.backends.items()):
            backend.reported = flights.pop(instance_id, 0)
        for instance_id, backend in list(self.routes.removed.items()):
            if backend.node == name:  # out of the routes, draining
                backend.reported = flights.get(instance_id, 0)
