"""SQLite store (WAL): checkpoints, nodes, instances, events and captured requests.

Checkpoint files live beside the database in content-addressed folders
`checkpoints/<id>/` (checkpoint.json + state.pkl). Writes are small local transactions in WAL
mode without fsync per commit, so they stay well under a millisecond on the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import Alias, Conflict, Instance, InstanceStatus, Node, NotFound
from ..runtimes.lease import LEASE_FILE, hold
from .projects import DEFAULT_PROJECT, ProjectRows, acting_user
from .schema import migrate

EVENT_KINDS = ("node", "checkpoint", "alias")
EVENTS_PER_SUBJECT = 1000  # events kept per node, checkpoint or alias; older ones are trimmed
EVENT_FIELDS = ("seq", "time", "node", "instance", "status", "message", "kind", "subject",
                "action", "user")


def default_state_dir() -> Path:
    """`$JUPYTER_DEPLOY_STATE_DIR`, else `deploy/` in the Jupyter data dir."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(os.environ.get("JUPYTER_DEPLOY_STATE_DIR") or Path(jupyter_data_dir()) / "deploy")


def _private(path: Path) -> Path:
    """`path`, created 0600 if new, made 0600 if not: SQLite gives its WAL and SHM files
    the database's mode."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


class Store:
    """The deploy service's persistent state, rooted at one folder."""

    def __init__(self, root: str | Path, events_per_subject: int = EVENTS_PER_SUBJECT) -> None:
        self.root = Path(root)
        self.events_per_subject = events_per_subject
        self._event_counts: dict[tuple[str, str], int] = {}
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)  # secrets and keys live here: no other local user may look in
        (self.root / "checkpoints").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self._lock_file = open(_private(self.root / LEASE_FILE), "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            hold(self._lock_file)  # the lease the instances of this folder watch
        except (BlockingIOError, PermissionError):
            self._lock_file.seek(0)
            owner = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise Conflict(f"the state folder {self.root} is in use by {owner}") from None
        self._lock_file.truncate(0)
        self._lock_file.write(f"pid {os.getpid()}")
        self._lock_file.flush()
        self.db = sqlite3.connect(_private(self.root / "deploy.db"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            migrate(self.db)
        except BaseException:
            self.close()
            raise
        self.projects = ProjectRows(self.db, self.transaction)
        self._trim_events()  # events from before the bound, or from a larger one
        for name in ("deploy.db-wal", "deploy.db-shm"):  # made before this release: 0644
            with contextlib.suppress(FileNotFoundError):
                (self.root / name).chmod(0o600)

    def close(self) -> None:
        self.db.close()
        self._lock_file.close()

    # checkpoints -------------------------------------------------------------------------

    def checkpoint_dir(self, checkpoint_id: str) -> Path:
        return self.root / "checkpoints" / checkpoint_id

    def write_checkpoint(self, meta: dict[str, Any], state: bytes) -> None:
        """Write a checkpoint's folder, once per content (no database: safe in a thread)."""
        folder = self.checkpoint_dir(meta["id"])
        if folder.exists():
            return
        tmp = Path(tempfile.mkdtemp(dir=self.root / "checkpoints", prefix=".tmp-"))
        (tmp / "state.pkl").write_bytes(state)
        (tmp / "checkpoint.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(folder)
        except OSError:  # the same content was written meanwhile
            shutil.rmtree(tmp)

    def add_checkpoint(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Record a new version of `meta["name"]` whose folder is written; the same content
        as the latest version is not repeated."""
        name, checkpoint_id = meta["name"], meta["id"]
        latest = self.db.execute(
            "SELECT version, id, meta FROM checkpoints WHERE name=? ORDER BY version DESC LIMIT 1",
            (name,),
        ).fetchone()
        if latest and latest[1] == checkpoint_id:
            return json.loads(latest[2])
        meta = {**meta, "version": (latest[0] + 1) if latest else 1, "created": time.time()}
        self.db.execute(
            "INSERT INTO checkpoints (name, version, id, created, meta) VALUES (?, ?, ?, ?, ?)",
            (name, meta["version"], checkpoint_id, meta["created"], json.dumps(meta)),
        )
        return meta

    def checkpoint(self, ref: str) -> dict[str, Any]:
        """Resolve `NAME` (latest version) or `NAME@VERSION`."""
        name, _, version = ref.partition("@")
        if version:
            if not re.fullmatch(r"[0-9]{1,9}", version):
                raise NotFound(f"checkpoint version must be a number: {ref!r}", field="checkpoint")
            row = self.db.execute(
                "SELECT meta FROM checkpoints WHERE name=? AND version=?", (name, int(version))
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT meta FROM checkpoints WHERE name=? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no checkpoint {ref!r}", field="checkpoint")
        return json.loads(row[0])

    def checkpoints(self, name: str | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE name=?", [name]) if name is not None else ("", [])
        rows = self.db.execute(f"SELECT meta FROM checkpoints{where} ORDER BY name, version",
                               args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_checkpoint(self, ref: str) -> list[dict[str, Any]]:
        """Delete one version (`NAME@V`) or every version (`NAME`); return what was deleted."""
        name, _, version = ref.partition("@")
        doomed = [self.checkpoint(ref)] if version else self.checkpoints(name)
        if not doomed:
            raise NotFound(f"no checkpoint {ref!r}", field="checkpoint")
        ids = {c["id"] for c in doomed}
        for node in self.nodes():
            if node.checkpoint_id in ids:
                raise Conflict(f"checkpoint {ref!r} is used by node {node.name!r}")
        for c in doomed:
            self.db.execute(
                "DELETE FROM checkpoints WHERE name=? AND version=?", (c["name"], c["version"])
            )
        for checkpoint_id in ids:
            if not self.db.execute(
                "SELECT 1 FROM checkpoints WHERE id=?", (checkpoint_id,)
            ).fetchone():
                shutil.rmtree(self.checkpoint_dir(checkpoint_id), ignore_errors=True)
        return doomed

    # nodes -------------------------------------------------------------------------------

    def save_node(self, node: Node) -> None:
        data = json.dumps({**node.to_json(), "key_hash": node.key_hash, "settled": node.settled,
                           "secrets_digest": node.secrets_digest})
        self.db.execute("INSERT OR REPLACE INTO nodes (name, data) VALUES (?, ?)", (node.name, data))

    def nodes(self) -> list[Node]:
        rows = self.db.execute("SELECT data FROM nodes ORDER BY name").fetchall()
        return [Node.from_json(json.loads(r[0])) for r in rows]

    def remove_node(self, name: str) -> None:
        """Forget the node, its instances, captured requests and secrets, all at once."""
        with self.transaction():
            for table, column in (("nodes", "name"), ("instances", "node"),
                                  ("requests", "node"), ("secrets", "node")):
                self.db.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements that commit together or not at all."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # secrets: kept out of the node's record, so that nothing that shows a node shows them --

    def save_secrets(self, node: str, values: dict[str, str]) -> None:
        """Replace the node's secrets (environment secrets and the registry password)."""
        with self.transaction():
            self.db.execute("DELETE FROM secrets WHERE node=?", (node,))
            self.db.executemany("INSERT INTO secrets (node, name, value) VALUES (?, ?, ?)",
                                [(node, name, value) for name, value in values.items()])

    def secrets(self, node: str) -> dict[str, str]:
        rows = self.db.execute("SELECT name, value FROM secrets WHERE node=?", (node,))
        return dict(rows.fetchall())

    # aliases -------------------------------------------------------------------------------

    def save_alias(self, alias: Alias) -> None:
        data = json.dumps({**alias.to_json(), "key_hash": alias.key_hash})
        self.db.execute("INSERT OR REPLACE INTO aliases (name, data) VALUES (?, ?)",
                        (alias.name, data))

    def aliases(self) -> list[Alias]:
        rows = self.db.execute("SELECT data FROM aliases ORDER BY name").fetchall()
        return [Alias.from_json(json.loads(r[0])) for r in rows]

    def remove_alias(self, name: str) -> None:
        self.db.execute("DELETE FROM aliases WHERE name=?", (name,))

    # instances and events ----------------------------------------------------------------

    def save_instance(self, instance: Instance, removed: bool = False) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO instances (id, node, data, removed) VALUES (?, ?, ?, ?)",
            (instance.id, instance.node, json.dumps(instance.to_json()), int(removed)),
        )

    def instances(self, node: str, removed: bool = False) -> list[Instance]:
        rows = self.db.execute(
            "SELECT data FROM instances WHERE node=? AND removed=? ORDER BY rowid",
            (node, int(removed)),
        ).fetchall()
        result = []
        for (data,) in rows:
            fields = json.loads(data)
            fields["status"] = InstanceStatus(fields["status"])
            result.append(Instance(**fields))
        return result

    def add_event(self, node: str | None, instance: str | None, status: str | None,
                  message: str = "", *, kind: str = "node", subject: str | None = None,
                  action: str | None = None) -> dict[str, Any]:
        """Record an event (of a node by default; `subject` names a checkpoint or alias);
        keep the subject's newest `events_per_subject`."""
        now, subject = time.time(), subject if subject is not None else node or ""
        key = (kind, subject)
        # Counted once per subject, then kept here (only this process writes the folder):
        # trimming then deletes just the oldest rows instead of walking the bound each time.
        count = self._event_counts.get(key)
        if count is None:
            count = self.db.execute("SELECT COUNT(*) FROM events WHERE kind=? AND subject=?",
                                    key).fetchone()[0]
        excess = count + 1 - self.events_per_subject
        user = acting_user()  # who caused it, when a control-API call did
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO events (time, node, instance, status, message, kind, subject, "
                "action, user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, node, instance, status, message, kind, subject, action, user))
            if excess > 0:
                self.db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE kind=? AND "
                    "subject=? ORDER BY seq LIMIT ?)", (*key, excess))
        self._event_counts[key] = count + 1 - max(excess, 0)
        values = (cursor.lastrowid, now, node, instance, status, message, kind, subject, action,
                  user)
        return dict(zip(EVENT_FIELDS, values, strict=True))

    def _trim_events(self) -> None:
        """Keep each subject's newest `events_per_subject` events."""
        self.db.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER "
            "(PARTITION BY kind, subject ORDER BY seq DESC) AS newer FROM events) "
            "WHERE newer > ?)", (self.events_per_subject,))

    def events(self, node: str | None = None, since: int = 0, limit: int = 1000,
               kind: str | None = None, subject: str | None = None,
               project: str | None = None) -> list[dict[str, Any]]:
        """Events after `since`, oldest first: of one node, or of a kind and subject; of one
        project's subjects (their keys, see service/projects_keys.py)."""
        query = f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE seq > ?"
        args: list[Any] = [since]
        if project == DEFAULT_PROJECT:  # its keys have no dot; the others' start `project.`
            query += " AND instr(subject, '.') = 0"
        elif project is not None:
            query += " AND substr(subject, 1, ?) = ?"
            args += [len(project) + 1, f"{project}."]
        for column, value in (("node", node), ("kind", kind), ("subject", subject)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        rows = self.db.execute(query + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [dict(zip(EVENT_FIELDS, r, strict=True)) for r in rows]

    # captured requests ---------------------------------------------------------------------

    def add_requests(self, rows: list[tuple[Any, ...]]) -> None:
        """(node, time, request_id, instance, status, latency_ms, input, input_size, output,
        output_size) rows, in one transaction."""
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "INSERT INTO requests (node, time, request_id, instance, status, latency_ms, "
                "input, input_size, output, output_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def requests(self, node: str, last: int) -> list[tuple[Any, ...]]:
        """The node's `last` requests, newest last."""
        rows = self.db.execute(
            "SELECT time, request_id, instance, status, latency_ms, input, input_size, output, "
            "output_size FROM requests WHERE node=? ORDER BY seq DESC LIMIT ?", (node, last)
        ).fetchall()
        return rows[::-1]
