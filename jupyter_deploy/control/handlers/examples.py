"""/deploy/api/nodes/{node}/examples and /deploy/api/aliases/{alias}/examples"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...service import projects_shown as shown
from .base import DeployHandler


class ExamplesHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, kind: str, name: str) -> None:
        """Calls to paste (curl), filled with the pin-time input, and where the API is described."""
        scope = self.scope
        self.reply(shown.examples(self.service.examples(
            "node" if kind == "nodes" else "alias", scope.key(name)), scope.project()))
