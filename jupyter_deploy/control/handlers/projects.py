"""/deploy/api/projects: the caller's projects, their members, quotas and audit (issue 19)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import DeployHandler
from .nodes import _int_argument


class ProjectsHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The caller's projects, each with the caller's role."""
        self.reply({"projects": self.service.scope(self.identity).my_projects()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create a shared project {"name"}; the caller becomes its admin."""
        self.reply(self.service.scope(self.identity).create_project(self.body()), status=201)


class ProjectHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.reply(self.service.scope(self.identity, project).project_info())

    @web.authenticated
    @authorized
    async def delete(self, project: str) -> None:
        """Delete the project with its aliases, nodes and checkpoints (admin)."""
        await self.service.scope(self.identity, project).delete_project()
        self.set_status(204)
        self.finish()


class MemberHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def put(self, project: str, kind: str, member: str) -> None:
        """Give a user or group a role: {"role": "viewer" | "editor" | "admin"} (admin)."""
        body = self.body()
        scope = self.service.scope(self.identity, project)
        self.reply(scope.set_member(kind, member, {} if body is None else body))

    @web.authenticated
    @authorized
    async def delete(self, project: str, kind: str, member: str) -> None:
        """Take the member's role back (admin)."""
        self.service.scope(self.identity, project).set_member(kind, member, None)
        self.set_status(204)
        self.finish()


class QuotasHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def put(self, project: str) -> None:
        """Set any of {instances, memory, cpus, gpus, disk} (MB for memory and disk; null:
        unlimited) (admin)."""
        self.reply(self.service.scope(self.identity, project).set_quotas(self.body()))


class AuditHandler(DeployHandler):
    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        """Who did what in the project and when, after `?since=SEQ`, oldest first."""
        since = _int_argument(self, "since", 0)
        self.reply({"events": self.service.scope(self.identity, project).audit(since)})
