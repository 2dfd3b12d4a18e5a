"""Checkpoint and alias changes are events beside node events, and wake the long poll."""

from __future__ import annotations

import asyncio

from ..conftest import checkpoint_body, until
from .test_api import ADDER, call, error_of, healthy_node

CHANGED = {**ADDER, "state": {"scale": 3.0}}
NODE_FIELDS = {"seq", "time", "node", "instance", "status", "message"}


async def last_seq(jp_fetch) -> int:
    events = (await call(jp_fetch, "events"))["events"]
    return events[-1]["seq"] if events else 0


async def woken_by(jp_fetch, deploy, change, **params):
    """The events a long poll waiting with `params` gets when `change()` happens."""
    since = await last_seq(jp_fetch)
    poll = asyncio.ensure_future(call(jp_fetch, "events",
                                      params={"since": since, "wait": 20, **params}))
    await until(lambda: deploy.event_log.waiting or poll.done(), timeout=10,
                message="the long poll to wait")
    assert not poll.done(), poll.result()  # nothing to see yet: it waits
    started = asyncio.get_running_loop().time()
    await change()
    events = (await poll)["events"]
    assert asyncio.get_running_loop().time() - started < 10  # woken, not timed out
    return events


async def test_checkpoint_changes_are_events_that_wake_the_long_poll(jp_fetch, deploy):
    async def pin():
        await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))

    [pinned] = await woken_by(jp_fetch, deploy, pin, kind="checkpoint")
    assert set(pinned) > NODE_FIELDS  # the node events' fields, and more
    assert {k: pinned[k] for k in ("kind", "subject", "action", "node", "instance", "status")} \
        == {"kind": "checkpoint", "subject": "adder", "action": "pinned", "node": None,
            "instance": None, "status": None}
    assert pinned["message"] == "checkpoint adder@1 pinned"
    await pin()  # the same content again is the same version: no event
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **CHANGED))
    await call(jp_fetch, "checkpoints", "adder@1", method="DELETE")
    events = (await call(jp_fetch, "events", params={"checkpoint": "adder"}))["events"]
    assert [(e["action"], e["message"]) for e in events] == [
        ("pinned", "checkpoint adder@1 pinned"), ("pinned", "checkpoint adder@2 pinned"),
        ("deleted", "checkpoint adder@1 deleted")]


async def test_alias_changes_are_events_beside_the_node_events(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder")

    async def create():
        await call(jp_fetch, "aliases", method="POST",
                   body={"name": "sum", "nodes": {"adder": 100}})

    [created] = await woken_by(jp_fetch, deploy, create)  # the panel's unfiltered poll
    assert (created["kind"], created["subject"], created["action"]) == ("alias", "sum", "created")
    assert created["message"] == "alias sum created: adder=100"
    await call(jp_fetch, "aliases", "sum", method="PUT",
               body={"nodes": {"adder": 100}, "public": True})
    await call(jp_fetch, "aliases", "sum", method="DELETE")
    events = (await call(jp_fetch, "events", params={"alias": "sum"}))["events"]
    assert [e["action"] for e in events] == ["created", "updated", "deleted"]
    assert all(e["node"] is None and e["status"] is None for e in events)
    node_events = (await call(jp_fetch, "events", params={"node": "adder"}))["events"]
    assert node_events and all(
        (e["kind"], e["subject"], e["node"], e["action"]) == ("node", "adder", "adder", None)
        for e in node_events)
    assert (await call(jp_fetch, "events", params={"kind": "node"}))["events"] == node_events


async def test_bad_event_filters_name_their_field(jp_fetch, deploy):
    for params, field in (({"kind": "cluster"}, "kind"),
                          ({"alias": "a", "checkpoint": "b"}, "checkpoint"),
                          ({"node": "a", "alias": "b"}, "alias"),
                          ({"kind": "node", "alias": "b"}, "kind"),
                          ({"since": "soon"}, "since")):
        code, error = await error_of(jp_fetch, "events", params=params)
        assert (code, error["error"]["field"]) == (422, field), params
