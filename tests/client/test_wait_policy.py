"""When `node create` and `node update` stop waiting, and what they say: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_deploy.client.wait import GIVE_UP_AFTER_S, Watch, generation, give_up, headline


def event(seq: int, instance: str | None, status: str | None, message: str = "",
          time: float = 100.0) -> dict[str, Any]:
    return {"seq": seq, "time": time, "node": "n", "instance": instance, "status": status,
            "message": message}


def node(status: str, strict: bool = False, **fields: Any) -> dict[str, Any]:
    return {"name": "n", "status": status, "strict": strict, "checkpoint": "c@2",
            "instances": [], **fields}


def test_an_instance_that_stops_before_it_served_is_a_failed_start():
    watch = Watch(after=50.0, healthy={"old"})
    for seq, (instance, status) in enumerate([
            ("a", "Created"), ("a", "Deleting"),  # failed
            ("b", "Healthy"), ("b", "Deleting"),  # served, then scaled down
            ("old", "Deleting"),  # replaced by a roll
            ("c", "Deleting"), ("c", "Deleting")], start=1):  # counted once
        watch.see(event(seq, instance, status))
    assert watch.failed == ["a", "c"]
    assert watch.since == 7


def test_events_of_an_older_node_of_the_same_name_are_skipped():
    watch = Watch(after=50.0)
    watch.see(event(3, "x", "Deleting", time=10.0))
    assert (watch.since, watch.failed, list(watch.events)) == (3, [], [])


def test_a_strict_replay_failure_is_remembered_only_when_strict():
    watch = Watch()
    watch.see(event(1, "a", None, "replay failed: ... (not strict: the node serves anyway)"))
    assert watch.strict_failure == ""
    watch.see(event(2, "a", None, "replay failed: ... (strict: no instance enters ...)\ndiff"))
    assert watch.strict_failure.endswith("diff")


@pytest.mark.parametrize(("status", "strict", "failed", "unhealthy_for", "expected"), [
    ("Created", False, 0, None, None),
    ("Unhealthy", False, 0, GIVE_UP_AFTER_S - 0.1, None),
    ("Unhealthy", False, 0, GIVE_UP_AFTER_S, f"Unhealthy for over {GIVE_UP_AFTER_S:g} s"),
    ("Unhealthy", False, 3, 0.0, "3 instances stopped before they were Healthy"),
    ("Created", False, 2, None, None),
    ("Unhealthy", True, 0, 0.0, "the replay check failed and the node is strict"),
    ("Deleting", False, 0, None, "it is being deleted"),
])
def test_when_waiting_longer_is_pointless(status, strict, failed, unhealthy_for, expected):
    watch = Watch(failed=[f"i{k}" for k in range(failed)])
    if strict:
        watch.see(event(1, "i", None, "replay failed: x (strict: no instance enters)"))
    since = None if unhealthy_for is None else 1000.0 - unhealthy_for
    assert give_up(node(status, strict), watch, since, 1000.0) == expected


def test_the_headline_says_what_went_wrong():
    assert headline(node("Created"), None, 0, False, 0) == (
        "node n is Created after 0 s (--timeout 0)")
    assert headline(node("Unhealthy"), "3 instances stopped", 9, False, 0) == (
        "node n is Unhealthy: 3 instances stopped")
    assert headline(node("Healthy"), "3 instances stopped", 9, True, 1) == (
        "node n did not roll to c@2 (3 instances stopped); it is Healthy, "
        "1 old instance(s) not replaced")
    assert headline(node("Healthy"), None, 6, True, 2) == (
        "node n did not roll to c@2 within 6 s (--timeout 6); it is Healthy, "
        "2 old instance(s) not replaced")


def test_only_changes_that_make_instances_differ_roll():
    before = {"name": "n", "checkpoint_id": "a", "checkpoint": "c@1", "min": 1, "env": {},
              "status": "Healthy", "instances": [], "endpoint": "http://x"}
    assert generation(before) == generation({**before, "min": 3, "strict": True})
    assert generation(before) != generation({**before, "env": {"K": "v"}})
    assert generation(before) != generation({**before, "checkpoint_id": "b"})
