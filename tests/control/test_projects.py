"""Projects over the control API (issue 19): without a hub, one personal project `default`
and nothing else changes; every handler acts as the server's identify hook says."""

from __future__ import annotations

from jupyter_deploy.service.identity import Identity

from ..conftest import checkpoint_body
from .test_api import ADDER, call, error_of


async def test_without_a_hub_there_is_one_personal_project(jp_fetch, deploy):
    listed = await call(jp_fetch, "projects")
    assert [(p["name"], p["role"], p["personal"]) for p in listed["projects"]] == [
        ("default", "admin", True)]
    team = await call(jp_fetch, "projects", method="POST", body={"name": "team"})
    assert team["members"] == [{"kind": "user", "name": "default", "role": "admin"}]
    pinned = await call(jp_fetch, "checkpoints", method="POST", params={"project": "team"},
                        body=checkpoint_body("adder", **ADDER))
    assert (pinned["project"], pinned["name"]) == ("team", "adder")
    created = await call(jp_fetch, "nodes", method="POST",
                         body={"name": "adder", "checkpoint": "adder", "min": 0,
                               "project": "team"})
    assert (created["node"]["project"], created["node"]["name"]) == ("team", "adder")
    assert (await call(jp_fetch, "nodes"))["nodes"] == []  # the default project's
    assert [n["name"] for n in (await call(jp_fetch, "nodes", params={"project": "team"}))[
        "nodes"]] == ["adder"]
    assert (await error_of(jp_fetch, "nodes", "adder"))[0] == 404
    quota = await call(jp_fetch, "projects", "team", "quotas", method="PUT",
                       body={"instances": 1})
    assert quota["quotas"]["instances"] == 1
    status, body = await error_of(jp_fetch, "nodes", method="POST", params={"project": "team"},
                                  body={"name": "more", "checkpoint": "adder", "max": 1})
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        403, "quota_exceeded", "quotas.instances")
    audit = await call(jp_fetch, "projects", "team", "events")
    assert [(e["user"], e["action"]) for e in audit["events"]] == [
        ("default", "created"), ("default", "pinned"), ("default", "created"),
        ("default", "set quotas")]


async def test_bad_project_input_is_a_clear_error(jp_fetch, deploy):
    for path, kwargs, expected in [
        (("nodes",), {"params": {"project": "Not A Name"}}, (422, "project")),
        (("nodes",), {"params": {"project": "nobody"}}, (404, "project")),
        (("projects",), {"method": "POST", "body": {"name": "default"}}, (409, "name")),
        (("projects",), {"method": "POST", "body": {}}, (422, "name")),
        (("projects", "default", "members", "user", "bob"),
         {"method": "PUT", "body": {"role": "owner"}}, (422, "role")),
        (("projects", "default", "members", "group", "ds"),
         {"method": "PUT", "body": {"role": {}}}, (422, "role")),  # was a 500 (fuzz)
        (("projects", "default", "members", "user", "default"),
         {"method": "PUT", "body": {"role": "viewer"}}, (409, "role")),  # the last admin
        (("projects", "default", "quotas"), {"method": "PUT", "body": {"rooms": 1}},
         (422, "quotas.rooms")),
        (("projects", "default"), {"method": "DELETE"}, (409, "project")),  # personal
    ]:
        status, body = await error_of(jp_fetch, *path, **kwargs)
        assert (status, body["error"].get("field")) == expected, (path, body)


async def test_handlers_act_as_the_identify_hook_says(jp_fetch, deploy, jp_serverapp):
    callers = {"alice": Identity("alice"), "bob": Identity("bob", frozenset({"ds"}))}
    settings = jp_serverapp.web_app.settings
    settings["deploy_identify"] = lambda handler: callers[handler.get_argument("as")]
    await call(jp_fetch, "projects", method="POST", body={"name": "shared"},
               params={"as": "alice"})
    status, body = await error_of(jp_fetch, "projects", "shared", params={"as": "bob"})
    assert (status, body["error"]["field"]) == (404, "project")
    await call(jp_fetch, "projects", "shared", "members", "group", "ds", method="PUT",
               body={"role": "viewer"}, params={"as": "alice"})
    shared = await call(jp_fetch, "projects", "shared", params={"as": "bob"})
    assert shared["role"] == "viewer"
    status, body = await error_of(jp_fetch, "checkpoints", method="POST",
                                  params={"as": "bob", "project": "shared"},
                                  body=checkpoint_body("adder", **ADDER))
    assert status == 403 and "editor" in body["error"]["message"]
    mine = await call(jp_fetch, "projects", params={"as": "bob"})
    assert sorted(p["name"] for p in mine["projects"]) == ["bob", "shared"]
