"""/deploy/api/aliases"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...service.aliases import AliasSet
from ...service.validation.names import body_object, check_name
from .base import DeployHandler


def _reply_set(handler: DeployHandler, result: AliasSet) -> None:
    """The alias, its key when one was made (shown only here), and warnings about what
    changed besides what was asked; 201 when created."""
    handler.reply({"alias": result.alias, "key": result.key, "warnings": result.warnings},
                  status=201 if result.created else 200)


class AliasesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"aliases": self.scope.aliases()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create an alias: {"name", "nodes": {"node": weight}, "public", "metadata", ...}."""
        body = body_object(self.body())
        name = check_name(body.get("name"), "name")
        _reply_set(self, self.scope.set_alias(name, body, create_only=True))


class AliasHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(self.scope.alias(name))

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        """Create or re-point the alias, atomically."""
        _reply_set(self, self.scope.set_alias(name, self.body()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self.scope.delete_alias(name)
        self.set_status(204)
        self.finish()


class ShadowHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The shadow node's answers compared with the primary's."""
        self.reply(self.service.shadow(self.scope.key(name)))
