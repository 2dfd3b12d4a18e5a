"""/deploy/api/aliases"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import Conflict
from .base import DeployHandler


def _reply_set(handler: DeployHandler, alias: dict, key: str | None, created: bool) -> None:
    """The alias, and its key when one was made (shown only here)."""
    handler.reply({"alias": alias, "key": key}, status=201 if created else 200)


class AliasesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"aliases": self.service.aliases()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create an alias: {"name", "nodes": {"node": weight}, "public", "metadata", ...}."""
        body = self.body()
        name = body.get("name") if isinstance(body, dict) else None
        if isinstance(name, str) and name in {a["name"] for a in self.service.aliases()}:
            raise Conflict(f"alias {name!r} exists already: PUT /aliases/{name} re-points it",
                           field="name")
        alias, key = self.service.set_alias(name, body)
        _reply_set(self, alias, key, created=True)


class AliasHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(self.service.alias(name))

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        """Create or re-point the alias, atomically."""
        existed = name in {a["name"] for a in self.service.aliases()}
        alias, key = self.service.set_alias(name, self.body())
        _reply_set(self, alias, key, created=not existed)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self.service.delete_alias(name)
        self.set_status(204)
        self.finish()


class ShadowHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The shadow node's answers compared with the primary's."""
        self.reply(self.service.shadow(name))
