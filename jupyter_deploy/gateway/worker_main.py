"""A gateway worker process: `python -m jupyter_deploy.gateway.worker_main STATE_DIR SLOT`.

It serves REST and gRPC on the gateway's ports, shared with the other workers through
SO_REUSEPORT (the kernel balances connections), on uvloop when it is installed. It listens
once it has its first routing state, and from then on serves from the last state it got,
whether the service is there or not. SIGTERM, or `stop` from the service: the answers in
flight are given, then it exits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ..http.framing import check_limits
from ..http.messages import Response
from .app import HEALTHY, Gateway
from .board import Board
from .channel import folder, token
from .fleet import board_path
from .grpc.server import GrpcGateway
from .link import Forwarder, Link
from .oip.versions import served_from
from .routing import Routes
from .state import Applied

log = logging.getLogger("jupyter_deploy.gateway.worker")


class Worker:
    """The gateway of one worker process, fed by its link to the service."""

    def __init__(self, state_dir: Path, slot: int, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.routes = Routes()
        self.board = Board(board_path(state_dir), slot, settings["workers"])
        self.applied = applied = Applied(self.routes, self.board)
        self.gateway = Gateway(self.routes, request_timeout_s=settings["request_timeout_s"],
                               describe=applied.describe, public_url=settings["public_url"],
                               limits=check_limits(settings["limits"]),
                               multiprocess=os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
        self.grpc = GrpcGateway(self.gateway, lambda: applied.nodes, applied.meta)
        self.link = Link(state_dir, token(state_dir), slot, settings["config"], applied,
                         self.grpc.health.changed)
        self.gateway.recorder = Forwarder(self.routes, self.link)
        self.gateway.metrics.report = self.link.note
        self.gateway.proto_text = self.grpc.proto_text
        self.gateway.oip.models.served = served_from(
            lambda: applied.nodes, lambda node: applied.instances.get(node, {}), applied.meta,
            lambda name: applied.versions.get(name, []))
        # which worker answered: a caller can tell where its connection went
        self.gateway.healthy = Response(200, HEALTHY.body,
                                        {"x-gateway-worker": f"{slot} {os.getpid()}"})

    async def run(self) -> None:
        """Serve until SIGTERM or the service's `stop`."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        linked = asyncio.ensure_future(self.link.run())
        first = asyncio.ensure_future(self.link.first_state.wait())
        ended = asyncio.ensure_future(stop.wait())
        await asyncio.wait([first, ended], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            host = self.settings["host"]
            await self.gateway.listen(host, self.settings["port"], reuse_port=True)
            await self.grpc.listen(host, self.settings["grpc_port"], reuse_port=True)
            await self.grpc.health.refresh()
            self.link.listening()
            gc.freeze()  # what is built so far lives as long as the process
            stopped = asyncio.ensure_future(self.link.stopped.wait())
            await asyncio.wait([ended, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        for task in (linked, first, ended):
            task.cancel()
        await asyncio.gather(self.gateway.stop(), self.grpc.stop())
        await asyncio.gather(linked, return_exceptions=True)


def main(argv: list[str]) -> None:
    state_dir, slot = Path(argv[0]), int(argv[1])
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {slot}: %(message)s")
    settings = json.loads((folder(state_dir) / "config.json").read_text())
    try:
        import uvloop
    except ImportError:  # asyncio's own loop serves too, slower
        runner = asyncio.run
    else:
        runner = uvloop.run
    log.info("gateway worker %d (pid %d) on %s:%s, gRPC %s", slot, os.getpid(),
             settings["host"], settings["port"], settings["grpc_port"])
    runner(Worker(state_dir, slot, settings).run())


if __name__ == "__main__":
    main(sys.argv[1:])
