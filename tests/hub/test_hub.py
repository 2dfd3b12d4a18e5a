"""The deploy service under a real JupyterHub (issue 19): it runs once, as a hub service;
every user's server reaches it as that user, whatever a caller claims to be."""

from __future__ import annotations

import json

import pytest
import requests

from ..control.servers import call
from .hub import PASSWORD, Hub, deploy_services


@pytest.fixture(scope="module")
def tokens(hub: Hub) -> dict[str, str]:
    return hub.start_servers("alice", "bob")


def test_one_service_for_every_users_server(hub, tokens):
    (service,) = deploy_services(hub.root)  # the hub's, and no user's server started one
    for user, token in tokens.items():
        status, body = call("GET", f"{hub.url}/user/{user}/deploy/api", token)
        assert status == 200, body
        assert body["state_dir"] == str(hub.root / "deploy-state")
        home = hub.root / "home" / user / ".local" / "share" / "jupyter" / "deploy"
        assert not (home / "service.json").exists()
    assert deploy_services(hub.root) == [service]
    # its operator (who can read its 0600 service.json) is its admin, as `jupyter deploy` is
    info = json.loads((hub.root / "deploy-state" / "service.json").read_text())
    assert call("GET", f"{info['url']}/identity", info["token"]) == \
        (200, {"user": "deploy", "groups": [], "admin": True})


def test_requests_arrive_as_the_hubs_user(hub, tokens):
    alice = call("GET", f"{hub.url}/user/alice/deploy/api/identity", tokens["alice"])
    assert alice == (200, {"user": "alice", "groups": ["analysts"], "admin": False})
    bob = call("GET", f"{hub.url}/user/bob/deploy/api/identity", tokens["bob"])
    assert bob == (200, {"user": "bob", "groups": [], "admin": False})


def test_a_claimed_name_changes_nothing(hub, tokens):
    claims = {"X-Forwarded-User": "bob", "X-Remote-User": "bob", "X-Deploy-User": "bob",
              "X-JupyterHub-User": "bob"}
    through_server = call("GET", f"{hub.url}/user/alice/deploy/api/identity?user=bob",
                          tokens["alice"], headers=claims)
    assert through_server[1]["user"] == "alice"
    direct = f"{hub.service_url}/deploy/api/identity"
    assert call("GET", direct, tokens["alice"], headers=claims)[1]["user"] == "alice"
    status, _ = call("GET", direct, headers=claims)  # a name and no token: refused
    assert status in (401, 403)
    status, _ = call("GET", direct, "made-up-token", headers=claims)
    assert status in (401, 403)


def test_a_browser_signs_in_to_the_service_through_the_hubs_oauth(hub, tokens):
    browser = requests.Session()
    browser.get(f"{hub.url}/hub/login", timeout=30)
    signed_in = browser.post(f"{hub.url}/hub/login", timeout=30, data={
        "username": "bob", "password": PASSWORD, "_xsrf": browser.cookies.get("_xsrf")})
    assert signed_in.status_code == 200, signed_in.text[-500:]
    # through the hub's proxy, as a browser opens it: the hub's OAuth, then the service's cookie
    answer = browser.get(f"{hub.url}/services/deploy/deploy/login", timeout=30)
    assert answer.history and answer.json() == {"user": "bob", "groups": [], "admin": False}
    stranger = requests.get(f"{hub.url}/services/deploy/deploy/api/identity", timeout=30)
    assert stranger.status_code == 403


def test_a_kernel_claiming_another_user_is_still_its_servers_user(hub, tokens):
    # What alice's kernels are given: her server's control API and its token.
    runtime = hub.root / "home" / "alice" / ".local" / "share" / "jupyter" / "runtime"
    (announced,) = runtime.glob("jupyter_deploy-*.json")
    kernel = json.loads(announced.read_text())
    status, made = call("POST", f"{kernel['url']}/projects", kernel["token"],
                        {"name": "lab", "user": "bob", "owner": "bob"},
                        headers={"X-Forwarded-User": "bob"})
    assert status == 201, made
    status, audit = call("GET", f"{kernel['url']}/projects/lab/events", kernel["token"])
    assert [(e["user"], e["action"]) for e in audit["events"]] == [("alice", "created")]
    assert call("GET", f"{hub.url}/user/bob/deploy/api/projects/lab", tokens["bob"])[0] == 404
