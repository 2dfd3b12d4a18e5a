"""The store's projects (issue 19): the migration of an existing state folder, and the
audit, which survives a restart and is bounded."""

from __future__ import annotations

import json
import sqlite3

from jupyter_deploy.store.projects import acting
from jupyter_deploy.store.schema import STEPS, migrate
from jupyter_deploy.store.sqlite import Store


def test_an_existing_state_folder_goes_to_the_default_project(tmp_path):
    db = sqlite3.connect(tmp_path / "deploy.db", isolation_level=None)
    migrate(db, STEPS[:2])  # the folder as the release before projects left it
    db.execute("INSERT INTO nodes (name, data) VALUES ('adder', '{}')")
    db.execute("INSERT INTO events (time, kind, subject, node, message) "
               "VALUES (1, 'node', 'adder', 'adder', 'old')")
    db.close()
    store = Store(tmp_path)
    project = store.projects.get("default")
    assert project is not None and project["members"] == [
        {"kind": "user", "name": "default", "role": "admin"}]
    assert [(e["subject"], e["user"]) for e in store.events(project="default")] == [
        ("adder", None)]
    with acting("alice"):
        store.add_event("alice.adder", None, "Created", "made", subject="alice.adder")
    store.add_event("alice.adder", None, "Healthy", "by the supervisor")
    assert [e["user"] for e in store.events(project="alice")] == ["alice", None]
    assert store.events(project="default")[-1]["subject"] == "adder"
    store.close()


def test_the_audit_survives_a_restart_and_is_bounded(tmp_path):
    store = Store(tmp_path)
    store.projects.add("team", "alice", personal=None)
    store.projects.audit_per_project = 3
    for number in range(5):
        store.projects.add_audit("team", "alice", "scaled", f"node n{number}")
    store.projects.add_audit("other", "bob", "created", "node x")
    store.close()
    reopened = Store(tmp_path)
    assert [e["target"] for e in reopened.projects.audit("team")] == ["node n2", "node n3",
                                                                      "node n4"]
    assert [e["user"] for e in reopened.projects.audit("other")] == ["bob"]
    assert json.dumps(reopened.projects.get("team")["quotas"]) == "{}"
    reopened.close()
