"""The control API's verbs as one caller in one project (issue 19): each checks the role it
needs, the project's quotas before anything is made, translates names to internal keys and
back, and records who did what in the project's audit."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..http.messages import Response
from ..models import Conflict, DeployError, Node
from ..runtimes.limits import limits
from ..store.projects import DEFAULT_PROJECT, acting
from . import projects_shown as shown
from .identity import Identity
from .observe import event_filter
from .projects import ADMIN, EDITOR, VIEWER, in_project, node_key
from .validation.names import body_object, check_name
from .validation.nodes import check_update, configure

if TYPE_CHECKING:
    from .deploy import DeployService

MB = 1024 * 1024


def plain(verb: Callable[..., Any]) -> Callable[..., Any]:
    """A verb whose refusals name the project's checkpoints, nodes and aliases as its
    members do (the parts below the scope name internal keys)."""
    if inspect.iscoroutinefunction(verb):
        @functools.wraps(verb)
        async def waited(self: Scope, *args: Any, **kwargs: Any) -> Any:
            try:
                return await verb(self, *args, **kwargs)
            except DeployError as exc:
                raise self.unkeyed(exc) from None
        return waited

    @functools.wraps(verb)
    def called(self: Scope, *args: Any, **kwargs: Any) -> Any:
        try:
            return verb(self, *args, **kwargs)
        except DeployError as exc:
            raise self.unkeyed(exc) from None
    return called


class Scope:
    """What `caller` may do in `project` (None: the caller's personal project)."""

    def __init__(self, service: DeployService, caller: Identity, project: str | None) -> None:
        self.service = service
        self.caller = caller
        self.asked = project
        self.resolved: str | None = None  # once a verb has resolved it
        self.projects = service.projects

    def project(self, need: str = VIEWER) -> str:
        """The project, once the caller holds `need` there."""
        self.resolved = self.projects.resolve(self.caller, self.asked, need)
        return self.resolved

    def unkeyed(self, exc: DeployError) -> DeployError:
        """The refusal with the project's keys written as its members name them."""
        project = self.resolved
        if project is not None and project != DEFAULT_PROJECT:
            exc.message = shown.text(shown.public_paths(exc.message, project), project)
            exc.field = None if exc.field is None else shown.text(exc.field, project)
            exc.args = (exc.message,)
        return exc

    def key(self, name: str, need: str = VIEWER) -> str:
        """The internal key of the project's checkpoint, node or alias `name`."""
        return node_key(self.project(need), name)

    def _body(self, body: Any) -> dict[str, Any]:
        """A copy of a creating call's body; its `project` field, if any, names the project
        (`?project=` wins)."""
        body = dict(body_object(body))
        project = body.pop("project", None)
        if self.asked is None and project is not None:
            self.asked = check_name(project, "project")
        return body

    @contextmanager
    def _change(self, need: str, action: str, target: str) -> Iterator[str]:
        """A change in the project: its events name the caller, and once it is done, the
        audit records it."""
        project = self.project(need)
        with acting(self.caller.user):
            yield project
        self.projects.audit(project, self.caller, action, target)

    # checkpoints ---------------------------------------------------------------------------

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every version of the project's checkpoints."""
        project = self.project()
        return [shown.checkpoint(c, project) for c in self.service.checkpoints()
                if in_project(c["name"], project)]

    @plain
    def checkpoint(self, ref: str) -> dict[str, Any]:
        """`NAME` (the latest version) or `NAME@VERSION`."""
        project = self.project()
        return shown.checkpoint(self.service.checkpoint(node_key(project, ref)), project)

    @plain
    async def add_checkpoint(self, body: Any) -> dict[str, Any]:
        """Pin a checkpoint in the project, within its disk quota."""
        body = self._body(body)
        name = check_name(body.get("name"), "name")
        project = self.project(EDITOR)
        data = body.get("data")
        size = len(data) * 3 / 4 if isinstance(data, str) else 0  # base64
        self.projects.check_quotas(project, {"disk": (self._disk(project) + size) / MB})
        with self._change(EDITOR, "pinned", f"checkpoint {name}"):
            added = await self.service._checkpoints.add(body, project)
        return shown.checkpoint(added, project)

    def _disk(self, project: str) -> float:
        """Bytes of the project's checkpoints' state."""
        ids = {c["id"] for c in self.service.checkpoints() if in_project(c["name"], project)}
        total = 0
        for checkpoint_id in ids:
            state = self.service.store.checkpoint_dir(checkpoint_id) / "state.pkl"
            total += state.stat().st_size if state.exists() else 0
        return total

    @plain
    def delete_checkpoint(self, ref: str) -> list[dict[str, Any]]:
        """Delete one version or every version of a checkpoint of the project."""
        with self._change(EDITOR, "deleted", f"checkpoint {ref}") as project:
            deleted = self.service.delete_checkpoint(node_key(project, ref))
        return [shown.checkpoint(c, project) for c in deleted]

    # nodes ---------------------------------------------------------------------------------

    @plain
    async def create_node(self, body: Any) -> tuple[dict[str, Any], str]:
        """Create a node in the project, within its quotas; return it and its key."""
        body = self._body(body)
        name = check_name(body.get("name"), "name")
        project = self.project(EDITOR)
        if project == DEFAULT_PROJECT and self.projects.rows.get(name) is not None:
            raise Conflict(f"{name!r} names a project: the gateway's /v1/nodes/{name}/... "
                           "could not tell them apart", field="name")
        if isinstance(body.get("checkpoint"), str):
            body["checkpoint"] = node_key(project, body["checkpoint"])
        with self._change(EDITOR, "created", f"node {name}"):
            created, key = await self.service._nodes.create(
                body, project, lambda node: self._admit(project, node))
            await self.service._routes_applied()
        return shown.node(created, project), key

    def _admit(self, project: str, node: Node) -> None:
        """QuotaExceeded unless the project, with `node` as it would be, fits its quotas."""
        usage = {"instances": 0.0, "memory": 0.0, "cpus": 0.0, "gpus": 0.0}
        others = [n for key, n in self.service.supervisor.nodes.items()
                  if in_project(key, project) and key != node.name and not n.deleting]
        for item in [*others, node]:
            wanted = limits(item, self.service.configs)
            usage["instances"] += item.max
            usage["memory"] += item.max * wanted.memory_mb
            usage["cpus"] += item.max * wanted.cpus
            usage["gpus"] += item.max * wanted.gpus
        self.projects.check_quotas(project, usage)

    def nodes(self) -> list[dict[str, Any]]:
        """The project's nodes."""
        project = self.project()
        return [shown.node(self.service.node(key), project)
                for key in list(self.service.supervisor.nodes) if in_project(key, project)]

    @plain
    def node(self, name: str) -> dict[str, Any]:
        """One node of the project."""
        project = self.project()
        return shown.node(self.service.node(node_key(project, name)), project)

    @plain
    def update_node(self, name: str, body: Any) -> dict[str, Any]:
        """Change a node's settings, within the project's quotas."""
        body = dict(body_object(body))
        project = self.project(EDITOR)
        key = node_key(project, name)
        if isinstance(body.get("checkpoint"), str):
            body["checkpoint"] = node_key(project, body["checkpoint"])
        node = self.service._nodes.find(key)
        check_update(node, body)
        candidate = copy.deepcopy(node)  # the node as it would be, for the quotas only
        configure(candidate, {k: v for k, v in body.items() if k != "checkpoint"},
                  self.service.configs, self.service.store.secrets(key))
        self._admit(project, candidate)
        action = "scaled" if set(body) <= {"min", "max"} else "updated"
        with self._change(EDITOR, action, f"node {name}: {', '.join(sorted(body))}"):
            updated = self.service.update_node(key, body)
        return shown.node(updated, project)

    @plain
    def suspend_node(self, name: str, suspended: bool) -> dict[str, Any]:
        """Suspend or resume a node of the project."""
        action = "suspended" if suspended else "resumed"
        with self._change(EDITOR, action, f"node {name}") as project:
            changed = self.service.suspend_node(node_key(project, name), suspended)
        return shown.node(changed, project)

    @plain
    async def delete_node(self, name: str) -> None:
        """Delete a node of the project (an admin's call)."""
        with self._change(ADMIN, "deleted", f"node {name}") as project:
            await self.service.delete_node(node_key(project, name))

    @plain
    async def execute(self, name: str, body: bytes) -> Response:
        """Call a node of the project."""
        return await self.service.execute(self.key(name), body)

    # aliases -------------------------------------------------------------------------------

    def aliases(self) -> list[dict[str, Any]]:
        """The project's aliases."""
        project = self.project()
        return [shown.alias(a, project) for a in self.service.aliases()
                if in_project(a["name"], project)]

    @plain
    def alias(self, name: str) -> dict[str, Any]:
        """One alias of the project."""
        project = self.project()
        return shown.alias(self.service.alias(node_key(project, name)), project)

    @plain
    def set_alias(self, name: str, body: Any, create_only: bool = False) -> Any:
        """Create or re-point an alias of the project at the project's nodes."""
        body = self._body(body)
        project = self.project(EDITOR)
        weights = body.get("nodes")
        if isinstance(weights, dict):
            body["nodes"] = {node_key(project, str(n)): w for n, w in weights.items()}
        if isinstance(body.get("shadow"), dict) and isinstance(body["shadow"].get("node"), str):
            body["shadow"] = {**body["shadow"],
                              "node": node_key(project, body["shadow"]["node"])}
        with self._change(EDITOR, "pointed", f"alias {name}"):
            done = self.service._aliases.put(name, body, create_only, node_key(project, name))
            self.service._routes_out()
        done.alias = shown.alias(done.alias, project)
        done.warnings = [shown.text(w, project) for w in done.warnings]
        return done

    @plain
    def delete_alias(self, name: str) -> None:
        """Delete an alias of the project."""
        with self._change(EDITOR, "deleted", f"alias {name}") as project:
            self.service.delete_alias(node_key(project, name))

    # events --------------------------------------------------------------------------------

    async def events(self, since: int = 0, node: str | None = None, wait_s: float = 0.0,
                     kind: str | None = None, alias: str | None = None,
                     checkpoint: str | None = None) -> list[dict[str, Any]]:
        """The project's events after `since`, filtered as DeployService.events."""
        project = self.project()
        node, alias, checkpoint = (None if n is None else node_key(project, n)
                                   for n in (node, alias, checkpoint))
        kind, subject = event_filter(node, kind, alias, checkpoint)
        found = await self.service.event_log.wait(since, wait_s, kind, subject, project)
        return [shown.event(e, project) for e in found]

    # the projects themselves -------------------------------------------------------------

    def my_projects(self) -> list[dict[str, Any]]:
        """The caller's projects, each with the caller's role."""
        return self.projects.mine(self.caller)

    def create_project(self, body: Any) -> dict[str, Any]:
        """A shared project; the caller is its admin."""
        taken = {key for key in self.service.supervisor.nodes if in_project(key, DEFAULT_PROJECT)}
        return self.projects.create(self.caller, body, taken)

    def project_info(self) -> dict[str, Any]:
        """The project: its members, quotas and the caller's role."""
        return self.projects.show(self.caller, self.project())

    def set_member(self, kind: str, name: str, body: Any) -> dict[str, Any]:
        """Give a user or group a role in the project (body None: take it back)."""
        return self.projects.set_member(self.caller, self.project(ADMIN), kind, name, body)

    def set_quotas(self, body: Any) -> dict[str, Any]:
        """Set the project's quotas."""
        return self.projects.set_quotas(self.caller, self.project(ADMIN), body)

    def audit(self, since: int = 0) -> list[dict[str, Any]]:
        """Who did what in the project, oldest first."""
        project = self.project()
        return [{**e, "project": project}
                for e in self.projects.rows.audit(project, since)]

    async def delete_project(self) -> None:
        """Delete the project and everything in it: aliases, nodes (their instances drain
        first), checkpoints, members, quotas and audit (an admin's call)."""
        project = self.project(ADMIN)
        if self.projects.row(project)["personal"] is not None:
            raise Conflict(f"project {project!r} is a personal project: it cannot be "
                           "deleted", field="project")
        with acting(self.caller.user):
            for item in self.aliases():
                self.service.delete_alias(node_key(project, item["name"]))
            for key in [k for k in self.service.supervisor.nodes if in_project(k, project)]:
                await self.service.delete_node(key)
            for name in {c["name"] for c in self.checkpoints()}:
                self.service.delete_checkpoint(node_key(project, name))
        self.projects.rows.remove(project)
