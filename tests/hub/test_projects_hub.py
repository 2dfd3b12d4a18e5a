"""Projects under a real JupyterHub (issue 19's "Must show"), through each user's own
server: both deploy at once, each sees only their own project until bob is made a viewer of
alice's shared one, a quota refusal, the audit with its users, and restarts of a user's server
and of the hub that drop no request to any node."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ..conftest import checkpoint_body, wait_for
from ..control.servers import call
from .hub import Hub

ADDER = dict(source="total = a + b", inputs="a:float,b:float", outputs="total", a=1.0, b=2.0)
CALL = {"input": {"a": 2, "b": 3}}


class Users:
    """alice and bob, each through their own server's /user/NAME/deploy/api."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.tokens = hub.start_servers("alice", "bob")
        self.keys: dict[str, str] = {}  # project/node -> key

    def api(self, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(method, f"{self.hub.url}/user/{user}/deploy/api{path}", self.tokens[user],
                    body)

    def deploy(self, user: str, name: str, project: str = "", **spec: Any) -> dict[str, Any]:
        """Pin the adder and make a node of it; wait until it is Healthy."""
        where = f"?project={project}" if project else ""
        status, body = self.api(user, "POST", f"/checkpoints{where}",
                                checkpoint_body("adder", **ADDER))
        assert status == 201, body
        status, body = self.api(user, "POST", f"/nodes{where}",
                                {"name": name, "checkpoint": "adder", **spec})
        assert status == 201, body
        self.keys[f"{body['node']['project']}/{name}"] = body["key"]
        wait_for(lambda: self.api(user, "GET", f"/nodes/{name}{where}")[1]["status"] ==
                 "Healthy", timeout=60, interval=0.2, message=f"{user}'s {name} to be Healthy")
        return dict(body["node"])


@pytest.fixture(scope="module")
def users(hub: Hub) -> Users:
    return Users(hub)


def served(url: str, token: str) -> bool:
    try:
        return call("GET", url, token)[0] == 200
    except OSError:  # not listening yet
        return False


def names(answer: tuple[int, Any]) -> list[str]:
    assert answer[0] == 200, answer
    return [node["name"] for node in answer[1]["nodes"]]


def test_each_sees_only_their_project_until_made_a_viewer(users):
    with ThreadPoolExecutor(2) as pool:  # both deploy at once
        alice, bob = pool.map(lambda user: users.deploy(user, "adder"), ("alice", "bob"))
    assert (alice["project"], bob["project"]) == ("alice", "bob")
    assert names(users.api("alice", "GET", "/nodes")) == ["adder"]
    assert names(users.api("bob", "GET", "/nodes")) == ["adder"]
    assert users.api("bob", "GET", "/nodes?project=alice")[0] == 404

    assert users.api("alice", "POST", "/projects", {"name": "team"})[0] == 201
    users.deploy("alice", "shared", "team")
    assert users.api("bob", "GET", "/nodes/shared?project=team")[0] == 404
    member = users.api("alice", "PUT", "/projects/team/members/user/bob", {"role": "viewer"})
    assert member[0] == 200, member
    seen = users.api("bob", "GET", "/nodes?project=team")[1]
    assert [node["name"] for node in seen["nodes"]] == ["shared"]
    assert users.keys["team/shared"] not in str(seen)  # her node's key never reaches him
    status, answer = users.api("bob", "POST", "/nodes/shared:execute?project=team", CALL)
    assert (status, answer["output"]) == (200, {"total": 5.0})
    assert users.api("bob", "PATCH", "/nodes/shared?project=team", {"max": 2})[0] == 403
    assert users.api("bob", "DELETE", "/nodes/shared?project=team")[0] == 403
    assert users.api("alice", "GET", "/nodes/shared?project=team")[1]["max"] == 1


def test_a_quota_refuses_before_anything_is_made(users):
    assert users.api("alice", "PUT", "/projects/alice/quotas", {"instances": 1})[0] == 200
    status, body = users.api("alice", "POST", "/nodes", {"name": "two", "checkpoint": "adder"})
    assert (status, body["error"]["code"], body["error"]["field"]) == \
        (403, "quota_exceeded", "quotas.instances")
    assert names(users.api("alice", "GET", "/nodes")) == ["adder"]


def test_the_audit_names_each_user(users):
    status, body = users.api("alice", "GET", "/projects/team/events")
    assert status == 200, body
    seen = [(event["user"], event["action"], event["target"]) for event in body["events"]]
    assert seen[:4] == [("alice", "created", "project team"),
                        ("alice", "pinned", "checkpoint adder"),
                        ("alice", "created", "node shared"), ("alice", "made viewer", "user bob")]
    status, body = users.api("bob", "GET", "/projects/bob/events")
    assert {event["user"] for event in body["events"]} == {"bob"}


def test_restarts_of_a_server_and_of_the_hub_drop_no_request(users, hub):
    gateway = users.api("alice", "GET", "")[1]["gateway_url"]
    stop, answers = threading.Event(), []

    def load(path: str, key: str) -> None:
        while not stop.is_set():
            try:
                answers.append(call("POST", f"{gateway}/v1/nodes/{path}:execute", body=CALL,
                                    headers={"Authorization": f"Bearer {key}"}, timeout=10)[0])
            except OSError as exc:
                answers.append(repr(exc))
            stop.wait(0.05)  # a steady load, not one that starves the restarts of CPU
    threads = [threading.Thread(target=load, args=(path, key)) for path, key in
               (("team/shared", users.keys["team/shared"]), ("bob/adder", users.keys["bob/adder"]))]
    for thread in threads:
        thread.start()
    try:
        assert hub.api("DELETE", "/users/alice/server")[0] in (202, 204)
        wait_for(lambda: "" not in hub.api("GET", "/users/alice")[1]["servers"], timeout=60,
                 interval=0.2, message="alice's server to stop")
        users.tokens.update(hub.start_servers("alice"))
        hub.restart()
        wait_for(lambda: served(f"{hub.service_url}/deploy/api/nodes", users.tokens["bob"]),
                 timeout=60, interval=0.2, message="the service to be back")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [answer for answer in answers if answer != 200]
    assert not failed and len(answers) > 20, (failed[:5], len(answers))
