"""/deploy/api/nodes/{node}/history: the node's metric history, kept by the service."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...models import InvalidInput
from ...service.observe import HISTORY_SPAN_S
from .base import DeployHandler
from .nodes import _int_argument


class HistoryHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """`?range=S` (default 300): the gateway's cumulative counters for the node and its
        instances' CPU and memory, sampled every few seconds over the last S seconds."""
        range_s = _int_argument(self, "range", 300)
        if not 1 <= range_s <= HISTORY_SPAN_S:
            raise InvalidInput(f"range must be from 1 to {int(HISTORY_SPAN_S)} seconds",
                               field="range")
        self.reply(self.service.history(self.scope.key(name), range_s))
