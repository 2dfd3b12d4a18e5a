"""/deploy/api/checkpoints"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import DeployHandler


class CheckpointsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Every version of every checkpoint."""
        self.reply({"checkpoints": self.scope.checkpoints()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Store a checkpoint pinned in a kernel."""
        self.reply(await self.scope.add_checkpoint(self.body()), status=201)


class CheckpointHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        """`NAME` (the latest, with the list of versions) or `NAME@VERSION`."""
        checkpoint = self.scope.checkpoint(ref)
        versions = [c["version"] for c in self.scope.checkpoints()
                    if c["name"] == checkpoint["name"]]
        self.reply({**checkpoint, "versions": versions})

    @web.authenticated
    @authorized
    async def delete(self, ref: str) -> None:
        """Delete one version or all of them; refused while a node uses one."""
        self.scope.delete_checkpoint(ref)
        self.set_status(204)
        self.finish()
