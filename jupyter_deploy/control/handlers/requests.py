"""/deploy/api/nodes/{node}/requests: the requests a node captured."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...models import InvalidInput
from .base import DeployHandler
from .nodes import _int_argument

MAX_LAST = 10_000


class RequestsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """`?last=N` (default 100): the newest N captured requests, newest last."""
        last = _int_argument(self, "last", 100)
        if not 1 <= last <= MAX_LAST:
            raise InvalidInput(f"last must be from 1 to {MAX_LAST}", field="last")
        self.reply(await self.service.requests(self.scope.key(name), last))
