"""The store's schema, as the steps that build it: step N leaves the database at
`PRAGMA user_version` N. A state folder from an earlier version is upgraded step by step
when it opens; each step commits whole or not at all."""

from __future__ import annotations

import sqlite3

from ..models import Conflict

# Step 1: the schema before migrations existed; its IF NOT EXISTS lets a database made
# before user_version was kept take the step as it is.
SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL, created REAL NOT NULL,
    meta TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY, node TEXT NOT NULL, data TEXT NOT NULL, removed INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, node TEXT NOT NULL,
    instance TEXT, status TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT NOT NULL, time REAL NOT NULL,
    request_id TEXT, instance TEXT, status INTEGER, latency_ms REAL,
    input BLOB, input_size INTEGER, output BLOB, output_size INTEGER);
CREATE INDEX IF NOT EXISTS requests_by_node ON requests (node, seq);
CREATE TABLE IF NOT EXISTS secrets (
    node TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (node, name));
"""

# Step 2: events of checkpoints and aliases beside those of nodes. Each event has a kind
# and a subject (the node's, checkpoint's or alias's name), `node` is empty for the others,
# and `action` says what happened to a checkpoint or alias. The table is rebuilt because
# SQLite cannot drop NOT NULL; `seq` values are kept, so clients' `since` stays valid.
EVENT_SUBJECTS = """
CREATE TABLE events_2 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, node TEXT, instance TEXT, status TEXT, message TEXT, action TEXT);
INSERT INTO events_2 (seq, time, kind, subject, node, instance, status, message)
    SELECT seq, time, 'node', node, node, instance, status, message FROM events;
DROP TABLE events;
ALTER TABLE events_2 RENAME TO events;
CREATE INDEX events_by_subject ON events (kind, subject, seq);
"""

# Step 3: projects (issue 19). Every checkpoint, node and alias belongs to one; the rows
# above keep one internal key each (`name` in the default project, `project.name` in the
# others), so what was stored before belongs to `default`. Members are users or hub groups
# with a role; quotas are a JSON object; the audit is bounded per project (sqlite.py).
PROJECTS = """
CREATE TABLE projects (
    name TEXT PRIMARY KEY, personal TEXT, created REAL NOT NULL, creator TEXT NOT NULL,
    quotas TEXT NOT NULL DEFAULT '{}');
CREATE TABLE members (
    project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (project, kind, name));
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, time REAL NOT NULL,
    user TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, message TEXT);
CREATE INDEX audit_by_project ON audit (project, seq);
ALTER TABLE events ADD COLUMN user TEXT;
INSERT INTO projects (name, personal, created, creator) VALUES
    ('default', 'default', CAST(strftime('%s', 'now') AS REAL), 'default');
INSERT INTO members (project, kind, name, role) VALUES ('default', 'user', 'default', 'admin');
"""

STEPS = [SCHEMA, EVENT_SUBJECTS, PROJECTS]


def version(db: sqlite3.Connection) -> int:
    """The step the database is at."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, steps: list[str] = STEPS) -> None:
    """Bring the database (in autocommit mode) up to the last step, one transaction a step."""
    at = version(db)
    if at > len(steps):
        raise Conflict(f"the store is at schema step {at}, but this jupyter_deploy knows "
                       f"{len(steps)}: it was written by a newer version")
    for number, step in enumerate(steps[at:], start=at + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(step):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """The complete statements of a script (executescript would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]
