"""The store: schema steps by PRAGMA user_version, one-transaction removal, bounded events."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from jupyter_deploy.models import Alias, Conflict, Instance, Node
from jupyter_deploy.store import Store
from jupyter_deploy.store.schema import SCHEMA, STEPS, migrate, version


def old_state_folder(root: Path) -> None:
    """A state folder as the service wrote it before migrations: today's SCHEMA, no
    user_version, a node with an instance, an alias and the node's events."""
    root.mkdir()
    db = sqlite3.connect(root / "deploy.db", isolation_level=None)
    db.executescript(SCHEMA)
    node = Node(name="adder", checkpoint_id="abc", checkpoint="adder@1")
    db.execute("INSERT INTO nodes (name, data) VALUES (?, ?)",
               ("adder", json.dumps({**node.to_json(), "key_hash": "h"})))
    db.execute("INSERT INTO aliases (name, data) VALUES (?, ?)",
               ("sum", json.dumps({**Alias(name="sum", nodes={"adder": 100}).to_json()})))
    db.execute("INSERT INTO instances (id, node, data) VALUES (?, ?, ?)",
               ("i1", "adder", json.dumps(Instance(id="i1", node="adder").to_json())))
    for status in ("Created", "Healthy"):
        db.execute("INSERT INTO events (time, node, instance, status, message) "
                   "VALUES (1.0, 'adder', NULL, ?, 'node')", (status,))
    db.close()


def test_a_state_folder_from_before_migrations_opens_upgraded(tmp_path):
    old_state_folder(tmp_path / "state")
    store = Store(tmp_path / "state")
    try:
        assert version(store.db) == len(STEPS)
        assert [n.name for n in store.nodes()] == ["adder"]
        assert [a.nodes for a in store.aliases()] == [{"adder": 100}]
        assert [i.id for i in store.instances("adder")] == ["i1"]
        old = store.events(node="adder")
        assert [(e["seq"], e["status"], e["kind"], e["subject"]) for e in old] == [
            (1, "Created", "node", "adder"), (2, "Healthy", "node", "adder")]
        assert {"seq", "time", "node", "instance", "status", "message"} <= set(old[0])
        new = store.add_event("adder", "i2", "Started")
        assert new["seq"] == 3  # a client's `since` from before the upgrade still holds
        pinned = store.add_event(None, None, None, "pinned", kind="checkpoint",
                                 subject="adder", action="pinned")
        assert store.events(kind="checkpoint") == [pinned]
        assert store.events(node="adder")[-1] == new
    finally:
        store.close()
    reopened = Store(tmp_path / "state")  # a second open has nothing left to do
    assert version(reopened.db) == len(STEPS) and len(reopened.events()) == 4
    reopened.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    Store(tmp_path / "state").close()
    db = sqlite3.connect(tmp_path / "state" / "deploy.db")
    db.execute(f"PRAGMA user_version = {len(STEPS) + 1}")
    db.close()
    with pytest.raises(Conflict, match="written by a newer version"):
        Store(tmp_path / "state")
    db = sqlite3.connect(tmp_path / "state" / "deploy.db")
    db.execute(f"PRAGMA user_version = {len(STEPS)}")
    db.close()
    Store(tmp_path / "state").close()  # the failed open let go of the folder's lock


def test_a_failed_step_changes_nothing(tmp_path):
    db = sqlite3.connect(tmp_path / "deploy.db", isolation_level=None)
    migrate(db, STEPS[:1])
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, [*STEPS[:1], broken])
    assert version(db) == 1
    assert not db.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone()
    migrate(db)
    assert version(db) == len(STEPS)


def test_remove_node_is_one_transaction(tmp_path):
    store = Store(tmp_path / "state")
    store.save_node(Node(name="adder", checkpoint_id="abc", checkpoint="adder@1"))
    store.save_instance(Instance(id="i1", node="adder"))
    store.save_secrets("adder", {"TOKEN": "s3cret"})
    store.add_requests([("adder", 1.0, "r1", "i1", 200, 1.0, b"{}", 2, b"{}", 2)])
    # The last of its deletes fails (as a full disk or a lock would make it)
    store.db.execute("CREATE TRIGGER refuse BEFORE DELETE ON secrets "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.remove_node("adder")
    assert [n.name for n in store.nodes()] == ["adder"]
    assert [i.id for i in store.instances("adder")] == ["i1"]
    assert len(store.requests("adder", 10)) == 1 and store.secrets("adder")
    store.db.execute("DROP TRIGGER refuse")
    store.remove_node("adder")
    assert (store.nodes(), store.instances("adder"), store.requests("adder", 10),
            store.secrets("adder")) == ([], [], [], {})
    store.close()


def test_events_are_trimmed_to_a_bound_per_node_checkpoint_and_alias(tmp_path):
    store = Store(tmp_path / "state", events_per_subject=5)
    busy = [store.add_event("busy", None, "Healthy", f"{n}")["seq"] for n in range(12)]
    quiet = [store.add_event("quiet", None, "Healthy", "")["seq"] for _ in range(3)]
    alias = [store.add_event(None, None, None, "", kind="alias", subject="busy",
                             action="updated")["seq"] for _ in range(8)]
    assert [e["seq"] for e in store.events(node="busy")] == busy[-5:]
    assert [e["seq"] for e in store.events(node="quiet")] == quiet
    assert [e["seq"] for e in store.events(kind="alias", subject="busy")] == alias[-5:]
    assert len(store.events()) == 13
    store.close()
    smaller = Store(tmp_path / "state", events_per_subject=2)  # a lower bound applies at once
    assert [e["seq"] for e in smaller.events()] == busy[-2:] + quiet[-2:] + alias[-2:]
    smaller.close()
