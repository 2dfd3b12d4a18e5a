"""/deploy/api/openapi.json"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..openapi import document
from .base import DeployHandler


class OpenAPIHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The control API's OpenAPI 3.1 document, with this server's base URL."""
        self.reply(document(self.base_url))
