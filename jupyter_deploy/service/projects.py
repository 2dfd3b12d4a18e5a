"""Projects (issue 19): who may see and change what, the personal project of each user,
shared projects with members and roles, quotas, and the audit of every change.

Below the service, everything stays keyed by one internal key per checkpoint, node or alias:
its name in the `default` project, `project.name` in the others (names are DNS labels, so
the dot cannot collide, and it is safe in file paths and container names). The control API
shows `project` and `name` apart, never the key.
"""

from __future__ import annotations

import re
from typing import Any

from ..gateway.addresses import route_key
from ..models import Conflict, DeployError, InvalidInput, NotFound
from ..store.projects import DEFAULT_PROJECT
from ..store.sqlite import Store
from .identity import Identity
from .validation.names import body_object, check_name

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
RANK = {VIEWER: 1, EDITOR: 2, ADMIN: 3}
KINDS = ("user", "group")
QUOTAS = ("instances", "memory", "cpus", "gpus", "disk")  # memory and disk in MB


class Forbidden(DeployError):
    status = 403
    code = "forbidden"


class QuotaExceeded(DeployError):
    status = 403
    code = "quota_exceeded"


def node_key(project: str, name: str) -> str:
    """The internal key of a project's checkpoint, node or alias, as the gateway routes it."""
    return route_key(project, name)


def split_key(key: str) -> tuple[str, str]:
    """(project, name) of an internal key."""
    project, dot, name = key.partition(".")
    return (project, name) if dot else (DEFAULT_PROJECT, key)


def in_project(key: str, project: str) -> bool:
    """Whether the key is one of the project's."""
    return split_key(key)[0] == project


def personal_name(user: str) -> str:
    """The name of a user's personal project: the user's name as a DNS label."""
    label = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-")[:63].strip("-")
    return label or "user"


class Projects:
    """Roles, membership, quotas and the audit, over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows = store.projects

    def row(self, project: str) -> dict[str, Any]:
        """The project's stored row, or NotFound."""
        row = self.rows.get(project)
        if row is None:
            raise NotFound(f"no project {project!r}", field="project")
        return row

    def role(self, caller: Identity, project: str) -> str | None:
        """The caller's strongest role in the project (None: not a member)."""
        if caller.admin:
            return ADMIN if self.rows.get(project) is not None else None
        roles = self.rows.roles(caller.user, caller.groups).get(project, [])
        return max(roles, key=RANK.__getitem__, default=None)

    def personal(self, caller: Identity) -> str:
        """The caller's personal project, created on first use."""
        name = personal_name(caller.user)
        row = self.rows.get(name)
        if row is None:
            self.rows.add(name, caller.user, personal=caller.user)
        elif row["personal"] != caller.user:
            raise Conflict(f"your personal project {name!r} is taken by a shared project: "
                           "name another with ?project=", field="project")
        return name

    def resolve(self, caller: Identity, project: Any, need: str) -> str:
        """The project a call acts in (the personal one when None), once the caller holds
        `need` there: 404 to a non-member, 403 naming the role to a member."""
        if project is None or project == "":
            project = self.personal(caller)
        check_name(project, "project")
        role = self.role(caller, project)
        if role is None:
            raise NotFound(f"no project {project!r}", field="project")
        if RANK[role] < RANK[need]:
            raise Forbidden(f"this needs the {need} role in project {project!r}; you are a "
                            f"{role}", field="project")
        return str(project)

    def mine(self, caller: Identity) -> list[dict[str, Any]]:
        """The caller's projects (the personal one included), each with the caller's role."""
        self.personal(caller)
        names = self.rows.names() if caller.admin else \
            sorted(self.rows.roles(caller.user, caller.groups))
        return [self.show(caller, name) for name in names]

    def show(self, caller: Identity, project: str) -> dict[str, Any]:
        """The project as the API shows it."""
        row = self.row(project)
        return {"name": row["name"], "personal": row["personal"] is not None,
                "role": self.role(caller, project), "created": row["created"],
                "creator": row["creator"], "members": row["members"],
                "quotas": {name: row["quotas"].get(name) for name in QUOTAS}}

    def create(self, caller: Identity, body: Any, taken: set[str]) -> dict[str, Any]:
        """A shared project whose creator is its admin. `taken`: the default project's node
        names, which `/v1/nodes/{project}/...` could not tell apart from a project's."""
        body = body_object(body)
        name = check_name(body.get("name"), "name")
        if self.rows.get(name) is not None:
            raise Conflict(f"project {name!r} exists already", field="name")
        if name in taken:
            raise Conflict(f"{name!r} names a node of the default project: the gateway's "
                           f"/v1/nodes/{name}/... could not tell them apart", field="name")
        self.rows.add(name, caller.user, personal=None)
        self.audit(name, caller, "created", f"project {name}")
        return self.show(caller, name)

    def set_member(self, caller: Identity, project: str, kind: str, name: str,
                   body: Any) -> dict[str, Any]:
        """Give a user or group a role (body {"role"}), or take it back (body None)."""
        if kind not in KINDS:
            raise NotFound(f"members are users or groups, not {kind!r}", field="kind")
        role = None if body is None else body_object(body).get("role")
        if body is not None and (not isinstance(role, str) or role not in RANK):
            raise InvalidInput(f"role must be one of {', '.join(RANK)}", field="role")
        admins = {(m["kind"], m["name"]) for m in self.row(project)["members"]
                  if m["role"] == ADMIN}
        if role != ADMIN and admins == {(kind, name)}:
            raise Conflict(f"{kind} {name} is the last admin of project {project!r}: make "
                           "another one first", field="role")
        self.rows.set_member(project, kind, name, role)
        action = "removed member" if role is None else f"made {role}"
        self.audit(project, caller, action, f"{kind} {name}")
        return self.show(caller, project)

    def set_quotas(self, caller: Identity, project: str, body: Any) -> dict[str, Any]:
        """Set any of the project's quotas; null is unlimited."""
        body = body_object(body)
        quotas = dict(self.row(project)["quotas"])
        for name, value in body.items():
            if name not in QUOTAS:
                raise InvalidInput(f"{name} is not a quota ({', '.join(QUOTAS)})",
                                   field=f"quotas.{name}")
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, int | float) or value < 0):
                raise InvalidInput(f"quotas.{name} must be a number >= 0 or null",
                                   field=f"quotas.{name}")
            quotas[name] = value
        self.rows.set_quotas(project, quotas)
        self.audit(project, caller, "set quotas", f"project {project}",
                   ", ".join(f"{k}={v}" for k, v in sorted(body.items())))
        return self.show(caller, project)

    def check_quotas(self, project: str, usage: dict[str, float]) -> None:
        """QuotaExceeded naming the first quota the project's usage would go over."""
        quotas = self.row(project)["quotas"]
        for name in QUOTAS:
            limit = quotas.get(name)
            if limit is not None and usage.get(name, 0) > limit:
                raise QuotaExceeded(f"project {project!r} would use {usage[name]:g} {name}, "
                                    f"over its quota of {limit:g}", field=f"quotas.{name}")

    def audit(self, project: str, caller: Identity, action: str, target: str,
              message: str = "") -> None:
        """Record who did what to what in the project."""
        self.rows.add_audit(project, caller.user, action, target, message)
