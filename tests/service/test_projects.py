"""Projects through the real service, as identities (issue 19): each user's own project,
a shared one with roles, quotas checked before anything is made, the audit, isolation.

`expect_*` hold what any caller (the hub's end-to-end tests too) must observe."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.models import DeployError
from jupyter_deploy.service.identity import LOCAL, Identity

from ..conftest import checkpoint_body, until

ALICE = Identity("alice")
BOB = Identity("bob", frozenset({"analysts"}))
ADDER = dict(source="total = a + b", inputs="a:float,b:float", outputs="total", a=1.0, b=2.0)


def refused(call: Any, *args: Any) -> DeployError:
    """The error a synchronous service call raises."""
    with pytest.raises(DeployError) as info:
        call(*args)
    return info.value


async def refused_async(call: Any, *args: Any) -> DeployError:
    with pytest.raises(DeployError) as info:
        await call(*args)
    return info.value


async def gateway_call(url: str, key: str, headers: dict[str, str] | None = None
                       ) -> tuple[int, Any]:
    """POST {"input": {"a": 2, "b": 3}} to the gateway (served on this loop); (status, JSON)."""
    return await asyncio.to_thread(_post, url, key, headers)


def _post(url: str, key: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    request = urllib.request.Request(url, json.dumps({"input": {"a": 2, "b": 3}}).encode(),
                                     {"Authorization": f"Bearer {key}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def deployed(deploy, caller: Identity, project: str | None, name: str, **spec: Any
                   ) -> tuple[dict[str, Any], str]:
    """Pin the adder and make a Healthy node of it as `caller` in `project`."""
    scope = deploy.scope(caller, project)
    await scope.add_checkpoint(checkpoint_body("adder", **ADDER))
    node, key = await scope.create_node({"name": name, "checkpoint": "adder", **spec})
    await until(lambda: scope.node(name)["status"] == "Healthy", timeout=30,
                message=f"{project}/{name} to be Healthy")
    return node, key


def answer(refusal: DeployError | tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a refusal: the service's error, or a control-API answer
    as the hub's end-to-end tests get it."""
    if isinstance(refusal, DeployError):
        return refusal.status, refusal.to_json()
    return refusal


def expect_not_found(refusal: DeployError | tuple[int, dict[str, Any]]) -> None:
    """A project the caller is not a member of does not exist for them."""
    status, body = answer(refusal)
    assert (status, body["error"]["field"]) == (404, "project"), body


def expect_forbidden(refusal: DeployError | tuple[int, dict[str, Any]], role: str) -> None:
    """A member without the role is told which role the call needs."""
    status, body = answer(refusal)
    assert status == 403 and f"the {role} role" in body["error"]["message"], body


def expect_quota(refusal: DeployError | tuple[int, dict[str, Any]], quota: str) -> None:
    """Going over a quota names it."""
    status, body = answer(refusal)
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        403, "quota_exceeded", f"quotas.{quota}"), body


async def test_each_user_sees_only_their_projects_until_shared(deploy):
    mine, _ = await deployed(deploy, ALICE, None, "adder")
    theirs, _ = await deployed(deploy, BOB, None, "adder")  # the same name, another project
    assert (mine["project"], mine["name"], theirs["project"]) == ("alice", "adder", "bob")
    assert [n["name"] for n in deploy.scope(BOB).nodes()] == ["adder"]
    expect_not_found(refused(deploy.scope(BOB, "alice").nodes))
    assert [p["name"] for p in deploy.scope(BOB).my_projects()] == ["bob"]
    assert deploy.scope(LOCAL).nodes() == []  # the default project is a project of its own
    # the same cell pinned in two projects: two folders, no file shared
    ids = {c["id"] for c in deploy.scope(ALICE).checkpoints() + deploy.scope(BOB).checkpoints()}
    assert len(ids) == 2
    logs = {Path(deploy.scope(who).node("adder")["instances"][0]["log_path"]).parent.name
            for who in (ALICE, BOB)}
    assert logs == {"alice.adder", "bob.adder"}  # each instance's files under its node's

    deploy.scope(ALICE).create_project({"name": "team"})
    node, key = await deployed(deploy, ALICE, "team", "adder", max=2)
    assert node["endpoint"].endswith("/v1/nodes/team/adder:execute")
    expect_not_found(refused(deploy.scope(BOB, "team").node, "adder"))
    deploy.scope(ALICE, "team").set_member("group", "analysts", {"role": "viewer"})
    team = deploy.scope(BOB, "team")
    assert [n["name"] for n in team.nodes()] == ["adder"]
    answer = await team.execute("adder", b'{"input": {"a": 2, "b": 3}}')
    assert json.loads(answer.body)["output"] == {"total": 5.0}
    expect_forbidden(refused(team.update_node, "adder", {"max": 3}), "editor")
    expect_forbidden(await refused_async(team.delete_node, "adder"), "admin")
    expect_forbidden(refused(team.set_member, "user", "bob", {"role": "admin"}), "admin")
    assert team.node("adder")["max"] == 2

    gateway = deploy.gateway_url
    assert (await gateway_call(f"{gateway}/v1/nodes/team/adder:execute", key))[0] == 200
    assert (await gateway_call(f"{gateway}/", key, {"x-node-id": "team/adder"}))[0] == 200
    assert (await gateway_call(f"{gateway}/v1/nodes/alice/adder:execute", key))[0] == 403  # not its key
    assert (await gateway_call(f"{gateway}/v1/nodes/adder:execute", key))[0] == 404
    assert (await gateway_call(f"{gateway}/v1/nodes/nobody/adder:execute", key))[0] == 404


async def test_quotas_refuse_before_anything_is_made(deploy):
    await deployed(deploy, ALICE, None, "one", max=2)
    scope = deploy.scope(ALICE)
    scope.set_quotas({"instances": 3, "disk": None})
    error = await refused_async(scope.create_node, {"name": "two", "checkpoint": "adder",
                                                    "max": 2})
    assert (error.status, error.to_json()["error"]) == (403, {
        "code": "quota_exceeded", "field": "quotas.instances",
        "message": "project 'alice' would use 4 instances, over its quota of 3"})
    assert [n["name"] for n in scope.nodes()] == ["one"]
    assert "alice.two" not in deploy.supervisor.nodes and deploy.store.secrets("alice.two") == {}
    assert refused(scope.update_node, "one", {"max": 4}).to_json()["error"]["field"] == \
        "quotas.instances"
    assert scope.node("one")["max"] == 2
    scope.set_quotas({"memory": 1, "instances": None})  # MB: every instance has a limit
    expect_quota(await refused_async(scope.create_node, {"name": "two", "checkpoint": "adder"}),
                 "memory")
    scope.set_quotas({"memory": None, "disk": 0})
    changed = checkpoint_body("adder", **{**ADDER, "source": "total = a - b"})
    error = await refused_async(scope.add_checkpoint, changed)
    assert error.to_json()["error"]["field"] == "quotas.disk"
    assert [c["version"] for c in scope.checkpoints()] == [1]
    error = refused(scope.set_quotas, {"instances": -1})
    assert (error.status, error.field) == (422, "quotas.instances")


async def test_audit_names_each_user(deploy):
    alice, bob = deploy.scope(ALICE, "team"), deploy.scope(BOB, "team")
    deploy.scope(ALICE).create_project({"name": "team"})
    alice.set_member("user", "bob", {"role": "editor"})
    await deployed(deploy, BOB, "team", "adder")
    bob.update_node("adder", {"max": 2})
    bob.set_alias("live", {"nodes": {"adder": 100}})
    error = refused(bob.set_alias, "bad", {"nodes": {"ghost": 100}})
    assert (error.field, error.message) == ("nodes.ghost", "no node 'ghost'")  # not its key
    seen = [(e["user"], e["action"], e["target"]) for e in alice.audit()]
    assert seen == [("alice", "created", "project team"), ("alice", "made editor", "user bob"),
                    ("bob", "pinned", "checkpoint adder"), ("bob", "created", "node adder"),
                    ("bob", "scaled", "node adder: max"), ("bob", "pointed", "alias live")]
    # the events the panel shows: the user beside those a user caused
    events = await bob.events(alias="live")
    assert [(e["user"], e["subject"], e["project"]) for e in events] == [("bob", "live", "team")]
    assert [a["nodes"] for a in bob.aliases()] == [{"adder": 100}]
    node_events = await bob.events(node="adder")
    assert (node_events[0]["user"], node_events[0]["status"]) == ("bob", "Created")
    assert {e["user"] for e in node_events if e["status"] == "Healthy"} == {None}  # its loop
    expect_not_found(refused(deploy.scope(Identity("carol"), "team").audit))


async def test_a_project_node_has_its_typed_grpc_service_and_its_public_name(deploy):
    """Through gRPC a project's node is `jupyter_deploy.nodes.PROJECT.NODE.Node`, found by
    reflection and health; every answer names it as callers do, `PROJECT/NODE`."""
    import grpc
    from google.protobuf import descriptor_pool, message_factory
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    deploy.scope(ALICE).create_project({"name": "my-team"})
    _, key = await deployed(deploy, ALICE, "my-team", "adder")
    alias = deploy.scope(ALICE, "my-team").set_alias("live", {"nodes": {"adder": 100}})
    service = "jupyter_deploy.nodes.my_team.adder.Node"

    def call() -> tuple[list[str], int, float, dict[str, str]]:
        with grpc.insecure_channel(deploy.gateway_grpc_address) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            listed = [s for s in database.get_services() if s.startswith("jupyter_deploy.nodes")]
            method = descriptor_pool.DescriptorPool(database).FindServiceByName(
                service).FindMethodByName("Execute")
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10).status
            execute = channel.unary_unary(
                f"/{service}/Execute",
                request_serializer=message_factory.GetMessageClass(
                    method.input_type).SerializeToString,
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type).FromString)
            request = message_factory.GetMessageClass(method.input_type)(a=2, b=3)
            reply = execute(request, metadata=(("authorization", f"Bearer {key}"),), timeout=10)
            _, state = execute.with_call(request, timeout=10, metadata=(
                ("authorization", f"Bearer {alias.key}"), ("x-node-alias", "my-team/live")))
            return listed, health, reply.total.number_value, dict(state.trailing_metadata())

    listed, health, total, trailing = await asyncio.to_thread(call)
    assert (listed, health, total) == ([service], health_pb2.HealthCheckResponse.SERVING, 5.0)
    assert trailing["x-node-id"] == "my-team/adder"

    def through_alias() -> str | None:
        request = urllib.request.Request(
            f"{deploy.gateway_url}/v1/aliases/my-team/live:execute",
            json.dumps({"input": {"a": 2, "b": 3}}).encode(),
            {"Authorization": f"Bearer {alias.key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["x-node-id"]

    assert await asyncio.to_thread(through_alias) == "my-team/adder"

    def model() -> dict[str, Any]:  # the Open Inference Protocol's name: one path segment
        request = urllib.request.Request(f"{deploy.gateway_url}/v2/models/my-team.adder",
                                         headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    assert (await asyncio.to_thread(model))["name"] == "my-team.adder"
