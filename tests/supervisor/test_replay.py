"""The replay check on a standalone service: before a node's first instance serves, it runs
the pin-time example input and its output is compared with the notebook's."""

from __future__ import annotations

from typing import Any

from ..conftest import checkpoint_body, wait_for
from ..gateway.test_gateway import post
from ..kernel.test_magics import kernel  # noqa: F401 - a kernel of this module's own

# The cell changes the state it reads: the notebook computed total with scale 2.0, but the
# checkpoint holds scale 3.0, so an instance answers 3.0 to the same input.
DRIFTING = dict(source="total = a * scale\nscale = scale + 1", inputs="a:float",
                outputs="total", state={"scale": 2.0}, a=1.0)


def events(service, node: str) -> list[dict[str, Any]]:
    return service.client.request("GET", "/events", node=node)["events"]


def replay_events(service, node: str) -> list[str]:
    return [e["message"] for e in events(service, node) if e["message"].startswith("replay ")]


def test_matching_cell_passes(service):
    node, _ = service.create_node("replay-pass", checkpoint_body(
        "replay-pass", "total = a + b", "a:float,b:float", "total", a=1.0, b=2.0), min=2)
    assert node["replay"]["status"] == "passed"
    assert node["replay"]["checkpoint"] == "replay-pass@1"
    assert node["replay"]["diff"] == ""
    # one replay for the node, though two instances started together
    assert replay_events(service, "replay-pass") == [
        "replay passed: the node's output on the example input is the notebook's"]
    service.client.delete_node("replay-pass")


def test_mismatch_is_an_event_with_the_diff_and_the_node_serves(service):
    node, key = service.create_node("replay-drift", checkpoint_body("replay-drift", **DRIFTING))
    assert node["status"] == "Healthy"
    assert node["replay"]["status"] == "failed"
    assert node["replay"]["diff"] == "output.total: notebook 2.0, node 3.0"
    [message] = replay_events(service, "replay-drift")
    assert message.startswith("replay failed: the node's output on the example input is not "
                              "the notebook's (not strict: the node serves anyway)\n")
    assert message.endswith("output.total: notebook 2.0, node 3.0")
    status, body, _ = post(node["endpoint"], {"input": {"a": 1.0}}, key)
    # the instance serves from the pinned state: the replay's run did not move it on
    assert (status, body) == (200, {"output": {"total": 3.0}})
    service.client.delete_node("replay-drift")


def test_structures_differ_as_a_unified_diff(service):
    body = checkpoint_body("replay-list", "values = [a, a * 2, a * 3]\nflag = True",
                           "a:float", "values,flag", a=1.0)
    body["example"]["output"] = {"values": [1.0, 2.5, 3.0 + 1e-13], "flag": True}
    node, _ = service.create_node("replay-list", body)
    diff = node["replay"]["diff"]
    assert diff.startswith("--- notebook output.values\n+++ node output.values\n")
    assert "\n- 2.5,\n+ 2.0,\n" in diff
    assert "- 3.0" not in diff and "+ 3.0" not in diff  # within the float tolerance
    assert "flag" not in diff
    service.client.delete_node("replay-list")


def test_cell_that_raises_on_replay_fails_with_its_error(service):
    body = checkpoint_body("replay-raise", "if used:\n    raise RuntimeError('model consumed')\n"
                           "used = True\ntotal = a", "a:float", "total", state={"used": False},
                           a=1.0)
    node, _ = service.create_node("replay-raise", body)
    assert node["replay"]["status"] == "failed"
    diff = node["replay"]["diff"]
    assert diff.startswith("the cell raised RuntimeError: model consumed\nTraceback")
    assert 'line 2, in <module>' in diff
    service.client.delete_node("replay-raise")


def test_checkpoint_without_example_is_skipped(service):
    body = checkpoint_body("replay-skip", "total = a", "a:float", "total", a=1.0)
    body["example"] = {"input": None, "output": None}
    node, _ = service.create_node("replay-skip", body, strict=True)
    assert node["status"] == "Healthy"
    assert node["replay"]["status"] == "skipped"
    assert "no example input" in node["replay"]["reason"]
    assert replay_events(service, "replay-skip") == [f"replay skipped: {node['replay']['reason']}"]
    service.client.delete_node("replay-skip")


def test_strict_mismatch_fails_the_node_without_a_restart_loop(service):
    service.client.add_checkpoint(checkpoint_body("replay-strict", **DRIFTING))
    created = service.client.create_node({"name": "replay-strict", "checkpoint": "replay-strict",
                                          "strict": True})
    key, endpoint = created["key"], created["node"]["endpoint"]
    node = wait_for(lambda: (n := service.client.node("replay-strict"))["status"] == "Unhealthy"
                    and not n["instances"] and n, message="the strict node to be Unhealthy")
    assert node["strict"] is True and node["replay"]["status"] == "failed"
    [message] = replay_events(service, "replay-strict")
    assert "(strict: no instance enters balancing until the node is updated" in message
    assert message.endswith("output.total: notebook 2.0, node 3.0")
    # meanwhile another node comes up; the strict one starts nothing new
    service.create_node("replay-later", checkpoint_body("replay-later", "y = x", "x:int", "y",
                                                        x=1))
    started = {e["instance"] for e in events(service, "replay-strict") if e["instance"]}
    assert len(started) == 1
    assert service.client.node("replay-strict")["status"] == "Unhealthy"
    status, body, _ = post(endpoint, {"input": {"a": 1.0}}, key)
    assert status == 503 and body["error"]["code"] == "unavailable"

    # strict: false lets it serve, without replaying again
    node = service.client.update_node("replay-strict", {"strict": False})
    wait_for(lambda: service.client.node("replay-strict")["status"] == "Healthy",
             message="the node to serve once it is not strict")
    assert post(endpoint, {"input": {"a": 1.0}}, key)[:2] == (200, {"output": {"total": 3.0}})
    assert len(replay_events(service, "replay-strict")) == 1

    # a fixed checkpoint, strict again: replayed, passes, and rolls in
    service.client.add_checkpoint(checkpoint_body("replay-strict", "total = a * scale",
                                                  "a:float", "total", state={"scale": 2.0},
                                                  a=1.0))
    service.client.update_node("replay-strict", {"checkpoint": "replay-strict@2",
                                                 "strict": True})
    node = wait_for(lambda: (n := service.client.node("replay-strict"))["status"] == "Healthy"
                    and [i["checkpoint_id"] for i in n["instances"]] == [n["checkpoint_id"]]
                    and n, message="the fixed checkpoint to roll in")
    assert node["replay"]["status"] == "passed"
    assert node["replay"]["checkpoint"] == "replay-strict@2"
    assert post(endpoint, {"input": {"a": 1.0}}, key)[:2] == (200, {"output": {"total": 2.0}})

    # back to the drifting checkpoint: it fails its replay, and the fixed one keeps serving
    service.client.update_node("replay-strict", {"checkpoint": "replay-strict@1"})
    node = wait_for(lambda: (n := service.client.node("replay-strict"))["replay"]["checkpoint"]
                    == "replay-strict@1" and len(n["instances"]) == 1 and n,
                    message="the replay of the drifting checkpoint")
    assert (node["replay"]["status"], node["status"]) == ("failed", "Healthy")
    assert node["instances"][0]["checkpoint_id"] != node["checkpoint_id"]
    assert post(endpoint, {"input": {"a": 1.0}}, key)[:2] == (200, {"output": {"total": 2.0}})
    for name in ("replay-strict", "replay-later"):
        service.client.delete_node(name)


def test_strict_must_be_a_boolean(service):
    service.client.add_checkpoint(checkpoint_body("replay-bad", "y = x", "x:int", "y", x=1))
    try:
        service.client.create_node({"name": "replay-bad", "checkpoint": "replay-bad",
                                    "strict": "yes"})
    except Exception as exc:  # noqa: BLE001 - ClientError, inspected below
        assert (exc.status, exc.body["error"]["field"]) == (422, "strict")
    else:
        raise AssertionError("strict: 'yes' was accepted")


def test_notebook_cell_that_changes_its_own_state_shows_in_node_status(kernel, service):  # noqa: F811
    kernel.ok("calls = 0\nx = 5")
    kernel.ok("%%deploy pin counter --inputs x:int --outputs seen\ncalls = calls + 1\n"
              "seen = x * calls")
    created = kernel.run("%deploy node create counter-node --checkpoint counter --strict")
    print(created.stderr)
    assert created.stderr.startswith("counter-node: Unhealthy")  # the create gives up early
    status = kernel.ok("%deploy node status counter-node").stdout
    assert "counter-node: Unhealthy" in status
    assert "  replay:   failed (counter@1 at " in status and ", strict)" in status
    assert "    output.seen: notebook 5, node 10" in status
    kernel.ok("%deploy node update counter-node --no-strict")
    wait_for(lambda: service.client.node("counter-node")["status"] == "Healthy",
             message="the node to serve once it is not strict")
    kernel.ok("%deploy node delete counter-node")
