"""The gateway's project paths (issue 19): `/v1/nodes/{project}/{node}`, the header forms,
and image-node paths, each resolved to one route, with single segments meaning `default`."""

from __future__ import annotations

from jupyter_deploy.gateway import passthrough
from jupyter_deploy.gateway.addresses import header_key, route_key
from jupyter_deploy.gateway.app import Gateway
from jupyter_deploy.gateway.routing import Routes, hash_key
from jupyter_deploy.http.messages import Request, Response

KEY = "jd_test"


def routed(gateway: Gateway, method: str, target: str, **headers: str) -> object:
    """What the gateway routes the request to (a Response when it refuses it)."""
    headers = {"authorization": f"Bearer {KEY}", **headers}
    return gateway.check(Request(method, target, "HTTP/1.1", headers))


def test_project_paths_name_one_route():
    routes = Routes()
    for key in ("adder", "team.adder"):
        routes.add_node(key, hash_key(KEY))
    routes.set_alias("team.live", hash_key(KEY), False, {"team.adder": 100}, None, None)
    gateway = Gateway(routes)
    assert routed(gateway, "POST", "/v1/nodes/team/adder:execute") is routes.nodes["team.adder"]
    assert routed(gateway, "POST", "/v1/nodes/default/adder:execute") is routes.nodes["adder"]
    assert routed(gateway, "POST", "/v1/nodes/adder:execute") is routes.nodes["adder"]
    assert routed(gateway, "POST", "/", **{"x-node-id": "team/adder"}) is \
        routes.nodes["team.adder"]
    assert routed(gateway, "POST", "/v1/aliases/team/live%3Aexecute") is \
        routes.aliases["team.live"]
    assert routed(gateway, "POST", "/", **{"x-node-alias": "team/live"}) is \
        routes.aliases["team.live"]
    for target in ("/v1/nodes/other/adder:execute", "/v1/nodes/team/adder/x:execute"):
        answer = routed(gateway, "POST", target)
        assert isinstance(answer, Response) and answer.status == 404, target


def test_image_node_paths_tell_a_project_from_a_path():
    routes = Routes()
    keys = {"web": "jd_default", "team.web": "jd_team"}
    for name, key in keys.items():
        routes.add_node(name, hash_key(key)).passthrough = True

    def opened_by(target: str) -> list[str]:
        """The node whose key the path takes: which node it named."""
        return [name for name, key in keys.items() if callable(passthrough.check(
            routes, Request("GET", target, "HTTP/1.1", {"authorization": f"Bearer {key}"}),
            1.0))]

    assert opened_by("/v1/nodes/team/web/healthz") == ["team.web"]
    assert opened_by("/v1/nodes/web/healthz") == ["web"]  # the default's, its own path
    assert opened_by("/v1/nodes/web/team/web") == ["web"]
    assert passthrough.check(routes, Request("GET", "/v1/nodes/nobody/x", "HTTP/1.1", {}),
                             1.0) is None  # the gateway's 404


def test_keys():
    assert [route_key(None, "a"), route_key("default", "a"), route_key("p", "a")] == [
        "a", "a", "p.a"]
    assert [header_key("a"), header_key("p/a"), header_key("default/a")] == ["a", "p.a", "a"]
