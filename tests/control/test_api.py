"""The control API inside a Jupyter server: authentication, validation, node life cycle."""

from __future__ import annotations

import json
import os
import signal

import pytest
from tornado.httpclient import HTTPClientError

from ..conftest import alive, checkpoint_body, until

ADDER = dict(source="total = (a + b) * scale", inputs="a:float,b:float", outputs="total",
             state={"scale": 2.0}, a=1.0, b=2.0)


async def call(jp_fetch, *path, method="GET", body=None, **kwargs):
    """A control-API call; the decoded JSON (None for 204)."""
    if body is not None:
        kwargs["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = await jp_fetch("deploy", "api", *path, method=method, **kwargs)
    return json.loads(response.body) if response.body else None


async def error_of(jp_fetch, *path, **kwargs):
    """The status and JSON error of a call that must fail."""
    with pytest.raises(HTTPClientError) as info:
        await call(jp_fetch, *path, **kwargs)
    return info.value.code, json.loads(info.value.response.body)


async def healthy_node(jp_fetch, deploy, name="adder", checkpoint=None, **spec):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint or checkpoint_body("adder", **ADDER))
    created = await call(jp_fetch, "nodes", method="POST",
                         body={"name": name, "checkpoint": "adder", **spec})
    await until(lambda: deploy.node(name)["status"] == "Healthy", timeout=30,
                message="the node to be Healthy")
    return created


async def test_every_route_needs_authentication(jp_fetch, deploy):
    paths = [("checkpoints",), ("checkpoints", "x"), ("nodes",), ("nodes", "x"),
             ("nodes", "x", "instances"), ("nodes", "x", "logs"), ("nodes", "x", "requests"),
             ("events",), ()]
    for path in paths:
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("deploy", "api", *path, headers={"Authorization": ""})
        assert info.value.code in (401, 403), path


async def test_checkpoint_versions(jp_fetch, deploy):
    first = await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    again = await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    changed = checkpoint_body("adder", **{**ADDER, "state": {"scale": 3.0}})
    second = await call(jp_fetch, "checkpoints", method="POST", body=changed)
    assert (first["version"], again["version"], second["version"]) == (1, 1, 2)
    assert first["id"] == again["id"] != second["id"]
    assert first["state"] == ["scale"]
    latest = await call(jp_fetch, "checkpoints", "adder")
    assert latest["version"] == 2 and latest["versions"] == [1, 2]
    assert (await call(jp_fetch, "checkpoints", "adder@1"))["id"] == first["id"]
    await call(jp_fetch, "checkpoints", "adder@1", method="DELETE")
    assert (await call(jp_fetch, "checkpoints", "adder"))["versions"] == [2]


async def test_bad_checkpoints_are_refused_with_the_field(jp_fetch, deploy):
    good = checkpoint_body("adder", **ADDER)
    cases = [
        ({**good, "name": "Not A Name"}, 422, "name"),
        ({**good, "inputs": [{"name": "a", "type": "complex"}]}, 422, "inputs"),
        ({**good, "data": "%%%"}, 422, "data"),
        ("{not json", 400, "body"),
    ]
    for body, status, field in cases:
        code, error = await error_of(jp_fetch, "checkpoints", method="POST", body=body)
        assert (code, error["error"]["field"]) == (status, field), error
    code, error = await error_of(jp_fetch, "checkpoints", "nothing")
    assert code == 404 and error["error"]["code"] == "not_found"
    assert (await call(jp_fetch, "checkpoints"))["checkpoints"] == []


async def test_bad_nodes_are_refused_with_the_field(jp_fetch, deploy):
    await call(jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER))
    cases = [
        ({"name": "x", "checkpoint": "missing"}, 422, "checkpoint"),
        ({"name": "UPPER", "checkpoint": "adder"}, 422, "name"),
        ({"name": "x", "checkpoint": "adder", "min": 3, "max": 2}, 422, "max"),
        ({"name": "x", "checkpoint": "adder", "min": -1}, 422, "min"),
        ({"name": "x", "checkpoint": "adder", "runtime": "cloud"}, 422, "runtime"),
        ({"name": "x", "checkpoint": "adder", "env": {"A B": "1"}}, 422, "env.A B"),
        ({"name": "x", "checkpoint": "adder", "health": {"interval_s": 0}}, 422,
         "health.interval_s"),
    ]
    for body, status, field in cases:
        code, error = await error_of(jp_fetch, "nodes", method="POST", body=body)
        assert (code, error["error"].get("field")) == (status, field), error
    assert (await call(jp_fetch, "nodes"))["nodes"] == []
    code, error = await error_of(jp_fetch, "nodes", "nobody")
    assert code == 404


async def test_instance_goes_through_every_status_in_order(jp_fetch, deploy):
    created = await healthy_node(jp_fetch, deploy, "adder")
    assert created["key"].startswith("jd_")
    node = await call(jp_fetch, "nodes", "adder")
    assert node["status"] == "Healthy"
    instance = node["instances"][0]["id"]
    await call(jp_fetch, "nodes", "adder", method="DELETE")
    events = (await call(jp_fetch, "events"))["events"]
    statuses = [e["status"] for e in events if e["instance"] == instance and e["status"]]
    assert statuses == ["Undefined", "Created", "Started", "Preparing", "Healthy", "Deleting"]
    node_statuses = [e["status"] for e in events if e["instance"] is None and e["status"]]
    assert node_statuses == ["Created", "Healthy", "Deleting"]


async def test_state_persists_between_calls_on_one_instance(jp_fetch, deploy):
    body = checkpoint_body("adder", "history.append(x)\nseen = len(history)",
                           "x:int", "seen:int", state={"history": []}, x=0)
    await healthy_node(jp_fetch, deploy, "counter", checkpoint=body)
    outputs = [await call(jp_fetch, "nodes", "counter:execute", method="POST",
                          body={"input": {"x": i}}) for i in range(3)]
    # the pin ran the cell once in the notebook: the pinned history holds that run
    assert [o["output"]["seen"] for o in outputs] == [2, 3, 4]


async def test_killed_instance_is_replaced_and_node_recovers(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder", min=2)
    node = await call(jp_fetch, "nodes", "adder")
    victim = node["instances"][0]
    seen = (await call(jp_fetch, "events"))["events"][-1]["seq"]
    os.kill(victim["pid"], signal.SIGKILL)

    async def replaced():
        current = deploy.node("adder")
        ids = {i["id"] for i in current["instances"] if i["status"] == "Healthy"}
        return current["status"] == "Healthy" and len(ids) == 2 and victim["id"] not in ids

    await until(replaced, timeout=30, message="a replacement instance")
    events = (await call(jp_fetch, "events", params={"since": seen}))["events"]
    node_statuses = [e["status"] for e in events if e["instance"] is None and e["status"]]
    assert node_statuses == ["Unhealthy", "Healthy"]
    victim_events = [(e["status"], e["message"]) for e in events if e["instance"] == victim["id"]]
    assert victim_events[0] == ("Unhealthy", "the instance exited (code -9)")
    result = await call(jp_fetch, "nodes", "adder:execute", method="POST",
                        body={"input": {"a": 1, "b": 2}})
    assert result == {"output": {"total": 6.0}}


async def test_delete_drains_and_leaves_no_process(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder", min=2)
    pids = [i["pid"] for i in (await call(jp_fetch, "nodes", "adder", "instances"))["instances"]]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    await call(jp_fetch, "nodes", "adder", method="DELETE")
    assert not any(alive(p) for p in pids)
    code, _ = await error_of(jp_fetch, "nodes", "adder")
    assert code == 404
    # the checkpoint is free again once no node uses it
    await call(jp_fetch, "checkpoints", "adder", method="DELETE")


async def test_checkpoint_in_use_cannot_be_deleted(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder")
    code, error = await error_of(jp_fetch, "checkpoints", "adder", method="DELETE")
    assert code == 409 and "adder" in error["error"]["message"]


async def test_scale_and_logs(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder")
    node = await call(jp_fetch, "nodes", "adder", method="PATCH", body={"min": 2, "max": 2})
    assert (node["min"], node["max"]) == (2, 2)
    await until(lambda: sum(i["status"] == "Healthy" for i in deploy.node("adder")["instances"]) == 2,
                timeout=30, message="a second instance")
    logs = (await call(jp_fetch, "nodes", "adder", "logs"))["logs"]
    assert len(logs) == 2 and all("restored adder" in item["log"] for item in logs)
    code, error = await error_of(jp_fetch, "nodes", "adder", method="PATCH", body={"name": "b"})
    assert (code, error["error"]["field"]) == (422, "name")


FAST_CHECKS = {"interval_s": 0.1, "timeout_s": 0.2, "fail_threshold": 2, "pass_threshold": 2}


async def test_frozen_instance_leaves_the_balancing_and_comes_back(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder", min=2, health=FAST_CHECKS)
    frozen, other = (await call(jp_fetch, "nodes", "adder"))["instances"]
    os.kill(frozen["pid"], signal.SIGSTOP)  # alive, but answers nothing
    try:
        await until(lambda: deploy.node("adder")["status"] == "Unhealthy", timeout=10,
                    message="the node to notice the frozen instance")
        for _ in range(4):  # every request goes to the instance that answers
            response = await jp_fetch("deploy", "api", "nodes", "adder:execute", method="POST",
                                      body=json.dumps({"input": {"a": 1, "b": 1}}))
            assert response.headers["x-instance-id"] == other["id"]
    finally:
        os.kill(frozen["pid"], signal.SIGCONT)
    await until(lambda: deploy.node("adder")["status"] == "Healthy", timeout=10,
                message="the instance to recover")
    statuses = [i["status"] for i in deploy.node("adder")["instances"] if i["id"] == frozen["id"]]
    assert statuses == ["Healthy"]  # the same instance, back in balancing


async def test_instance_that_stays_unhealthy_is_replaced(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy, "adder", health={**FAST_CHECKS, "replace_after_s": 0.5})
    [frozen] = (await call(jp_fetch, "nodes", "adder"))["instances"]
    os.kill(frozen["pid"], signal.SIGSTOP)

    def replaced():
        node = deploy.node("adder")
        return node["status"] == "Healthy" and [i["id"] for i in node["instances"]] != [frozen["id"]]

    await until(replaced, timeout=30, message="a replacement for the frozen instance")
    await until(lambda: not alive(frozen["pid"]), timeout=15, message="the frozen one to be gone")
