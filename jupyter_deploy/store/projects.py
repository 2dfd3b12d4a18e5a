"""The store's projects (issue 19): projects, their members and quotas, and the audit.

Every user-caused write of the store can carry who caused it: `acting(user)` marks the
calls made inside it, and `Store.add_event` puts that user on the node events it writes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

DEFAULT_PROJECT = "default"  # the personal project of a server without a hub
AUDIT_PER_PROJECT = 1000  # audit events kept per project; older ones are trimmed
AUDIT_FIELDS = ("seq", "time", "user", "action", "target", "message")

# A holder, not the user itself: tasks started during a call copy the context, and the
# holder is emptied when the call returns, so a node's later events do not name the user
# whose call happened to start its loop.
_ACTING: ContextVar[list[str | None] | None] = ContextVar("jupyter_deploy_acting", default=None)


@contextlib.contextmanager
def acting(user: str) -> Iterator[None]:
    """Events written inside this block were caused by `user`."""
    holder: list[str | None] = [user]
    token = _ACTING.set(holder)
    try:
        yield
    finally:
        holder[0] = None
        _ACTING.reset(token)


def acting_user() -> str | None:
    """The user whose call is being handled now, if any."""
    holder = _ACTING.get()
    return holder[0] if holder else None


class ProjectRows:
    """Projects, members, quotas and the audit, over the store's database."""

    def __init__(self, db: sqlite3.Connection,
                 transaction: Callable[[], AbstractContextManager[None]],
                 audit_per_project: int = AUDIT_PER_PROJECT) -> None:
        self.db = db
        self.transaction = transaction  # the store's: statements that commit together
        self.audit_per_project = audit_per_project

    def get(self, name: str) -> dict[str, Any] | None:
        """The project's row with its members, or None."""
        row = self.db.execute("SELECT name, personal, created, creator, quotas FROM projects "
                              "WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        members = self.db.execute("SELECT kind, name, role FROM members WHERE project=? "
                                  "ORDER BY kind DESC, name", (name,)).fetchall()
        return {"name": row[0], "personal": row[1], "created": row[2], "creator": row[3],
                "quotas": json.loads(row[4]),
                "members": [{"kind": k, "name": n, "role": r} for k, n, r in members]}

    def names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM projects ORDER BY name")]

    def add(self, name: str, creator: str, personal: str | None) -> None:
        """A new project whose creator is its admin."""
        with self.transaction():
            self.db.execute("INSERT INTO projects (name, personal, created, creator) "
                            "VALUES (?, ?, ?, ?)", (name, personal, time.time(), creator))
            self.db.execute("INSERT INTO members (project, kind, name, role) "
                            "VALUES (?, 'user', ?, 'admin')", (name, creator))

    def remove(self, name: str) -> None:
        """Forget the project, its members, quotas and audit."""
        with self.transaction():
            for table, column in (("projects", "name"), ("members", "project"),
                                  ("audit", "project")):
                self.db.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))

    def set_member(self, project: str, kind: str, name: str, role: str | None) -> None:
        """Give a user or group a role in the project; None removes it."""
        if role is None:
            self.db.execute("DELETE FROM members WHERE project=? AND kind=? AND name=?",
                            (project, kind, name))
        else:
            self.db.execute("INSERT OR REPLACE INTO members (project, kind, name, role) "
                            "VALUES (?, ?, ?, ?)", (project, kind, name, role))

    def roles(self, user: str, groups: frozenset[str]) -> dict[str, list[str]]:
        """{project: [role, ...]} of the user, directly or through a group."""
        found: dict[str, list[str]] = {}
        rows = self.db.execute("SELECT project, kind, name, role FROM members").fetchall()
        for project, kind, name, role in rows:
            if (kind == "user" and name == user) or (kind == "group" and name in groups):
                found.setdefault(project, []).append(role)
        return found

    def set_quotas(self, project: str, quotas: dict[str, Any]) -> None:
        self.db.execute("UPDATE projects SET quotas=? WHERE name=?",
                        (json.dumps(quotas), project))

    def add_audit(self, project: str, user: str, action: str, target: str,
                  message: str = "") -> dict[str, Any]:
        """Record who did what to what; keep the project's newest `audit_per_project`."""
        now = time.time()
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO audit (project, time, user, action, target, message) "
                "VALUES (?, ?, ?, ?, ?, ?)", (project, now, user, action, target, message))
            self.db.execute(
                "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE project=? "
                "ORDER BY seq DESC LIMIT -1 OFFSET ?)", (project, self.audit_per_project))
        return dict(zip(AUDIT_FIELDS, (cursor.lastrowid, now, user, action, target, message),
                        strict=True))

    def audit(self, project: str, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The project's audit events after `since`, oldest first."""
        rows = self.db.execute(
            f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit WHERE project=? AND seq > ? "
            "ORDER BY seq LIMIT ?", (project, since, limit)).fetchall()
        return [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]
