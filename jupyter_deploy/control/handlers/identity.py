"""`GET /deploy/api/identity`: who the service takes the caller for (the panel's user)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import DeployHandler


class IdentityHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's user, groups and admin flag, as the server proved them."""
        identity = self.identity
        self.reply({"user": identity.user, "groups": sorted(identity.groups),
                    "admin": identity.admin})
