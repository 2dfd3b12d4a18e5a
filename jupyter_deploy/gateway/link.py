"""A gateway worker's end of the channel: it takes the routing state from the service and
reports back what the service learns from the gateway (see hub.py).

While the service is away the worker keeps serving from the last state it applied, and
connects again with backoff; on every connection it gets the whole state again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .capture import Sampler
from .channel import Channel, ChannelClosed, socket_path
from .routing import Routes
from .state import Applied

LOAD_S = 0.05  # how often the load is told (the supervisor samples every 0.2 s)
BACKOFF_S = (0.05, 1.0)  # first and longest wait between two connection attempts
log = logging.getLogger("jupyter_deploy.gateway.worker")


class Link:
    """Connects to the service, applies its states, and reports back."""

    def __init__(self, state_dir: Path, token: str, slot: int, config: str,
                 applied: Applied, on_state: Callable[[], None]) -> None:
        self.path = socket_path(state_dir)
        self.token = token
        self.slot = slot
        self.config = config
        self.applied = applied
        self.routes: Routes = applied.routes
        self.on_state = on_state  # after each state applied (gRPC health refreshes)
        self.channel: Channel | None = None
        self.first_state = asyncio.Event()
        self.stopped = asyncio.Event()  # the service said stop
        self.serving = False  # it listens on the gateway's ports
        self._last_load: dict[str, Any] = {}
        self.routes.on_stuck.append(self.stuck)
        self.routes.on_shadow.append(self.shadow)

    async def run(self) -> None:
        """Stay connected; on each connection, apply states until it closes."""
        wait = BACKOFF_S[0]
        reporter = asyncio.ensure_future(self._report())
        try:
            while not self.stopped.is_set():
                try:
                    reader, writer = await asyncio.open_unix_connection(self.path,
                                                                        limit=1 << 20)
                except OSError:
                    if not self.path.parent.exists():  # the state folder was deleted
                        log.warning("gateway worker %d: %s is gone: stopping", self.slot,
                                    self.path.parent)
                        self.stopped.set()
                        break
                    await asyncio.sleep(wait)
                    wait = min(BACKOFF_S[1], wait * 2)
                    continue
                if await self._session(Channel(reader, writer)):
                    wait = BACKOFF_S[0]
                elif not self.stopped.is_set():  # refused, or gone at once: not too often
                    await asyncio.sleep(wait)
                    wait = min(BACKOFF_S[1], wait * 2)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)

    async def _session(self, channel: Channel) -> bool:
        """Apply the service's states until the channel closes; whether one came."""
        channel.send({"t": "hello", "token": self.token, "pid": os.getpid(), "slot": self.slot,
                      "config": self.config, "serving": self.serving})
        self.channel = channel
        self._last_load = {}
        applied = False
        try:
            while True:
                message = await channel.receive()
                if message.get("t") == "state":
                    self.applied.apply(message["state"], int(message["version"]))
                    applied = True
                    # what it has in flight now: nothing more goes to an instance the
                    # state took out, so the service's drain can count down from this
                    self._last_load = self._load()
                    channel.send({"t": "ack", "version": message["version"],
                                  "nodes": self._last_load})
                    self.first_state.set()
                    self.on_state()
                elif message.get("t") == "ping":  # after what it reported so far
                    channel.send({"t": "pong", "n": message["n"]})
                elif message.get("t") == "stop":
                    self.stopped.set()
                    return applied
        except ChannelClosed:
            log.info("gateway worker %d: the service went away; serving on", self.slot)
        except Exception:  # a state it cannot apply: it serves on from the last, and retries
            log.exception("gateway worker %d: the channel failed", self.slot)
        finally:
            self.channel = None
            channel.close()
        return applied

    def listening(self) -> None:
        """The worker serves: the service waits for this at its start."""
        self.serving = True
        self.send({"t": "serving"})

    def send(self, message: dict[str, Any]) -> None:
        """Tell the service, if it is there (what happens while it is away is not kept)."""
        if self.channel is not None:
            self.channel.send(message)

    # reports ----------------------------------------------------------------------------------

    def stuck(self, node: str, instance_id: str) -> None:
        self.send({"t": "stuck", "node": node, "instance": instance_id})

    def shadow(self, alias: str, entry: dict[str, Any]) -> None:
        self.send({"t": "shadow", "alias": alias, "entry": entry})

    def note(self, node: str, message: str) -> None:
        self.send({"t": "note", "node": node, "message": message})

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(LOAD_S)
            try:
                self._tell_load()
            except Exception:  # a report must not end the worker
                log.exception("gateway worker %d: load report failed", self.slot)

    def _tell_load(self) -> None:
        """Requests held and in flight per node, when they changed; demand an alias sent
        elsewhere (missed); pools of instances gone from the routes, once they are idle."""
        for name, route in list(self.routes.nodes.items()):
            if route.missed:
                self.send({"t": "missed", "node": name, "count": route.missed})
                route.missed = 0
        for instance_id, backend in list(self.routes.removed.items()):
            if not backend.local:
                backend.pool.close()
                del self.routes.removed[instance_id]
        load = self._load()
        if load != self._last_load:
            self.send({"t": "load", "nodes": load})
            self._last_load = load

    def _load(self) -> dict[str, Any]:
        """Per node: [requests held, {instance id: requests in flight}], instances out of
        the routes but still draining included."""
        load: dict[str, Any] = {}
        for name, route in list(self.routes.nodes.items()):
            flights = {i: b.local for i, b in route.backends.items() if b.local}
            held = route.waiting + len(route.queue)
            if held or flights:
                load[name] = [held, flights]
        for instance_id, backend in list(self.routes.removed.items()):
            if backend.local:
                load.setdefault(backend.node, [0, {}])[1][instance_id] = backend.local
        return load


class Forwarder(Sampler):
    """Samples requests as the service's recorder does, and sends them to it to store."""

    def __init__(self, routes: Routes, link: Link) -> None:
        super().__init__(routes)
        self.link = link

    def keep(self, row: tuple[Any, ...]) -> None:
        with contextlib.suppress(TypeError):
            self.link.send({"t": "capture", "row": [
                *row[:6], base64.b64encode(bytes(row[6])).decode(),
                base64.b64encode(bytes(row[7])).decode()]})
