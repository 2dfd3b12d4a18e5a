"""The gRPC pass-through's policies: what is passed on, keys, which node an alias picks."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from typing import Any

import grpc
import pytest

from jupyter_deploy.gateway.app import Gateway
from jupyter_deploy.gateway.grpc.passthrough import (
    GrpcPassthrough,
    Refused,
    check_key,
    passed_on,
    routed,
)
from jupyter_deploy.gateway.routing import Routes, hash_key
from jupyter_deploy.service.validation.containers import container_settings
from jupyter_deploy.service.validation.nodes import image_node

Code = grpc.StatusCode


def test_passed_on_keeps_the_callers_metadata_but_not_the_key_or_the_routing():
    metadata = (("authorization", "Bearer k"), ("x-node-id", "n"), ("x-node-alias", "a"),
                ("x-test", "yes"), ("trace-bin", b"\x00"), ("user-agent", "grpc-python"),
                ("x-request-id", "theirs"), ("grpc-accept-encoding", "gzip"))
    assert passed_on(metadata, "r1") == (("x-test", "yes"), ("trace-bin", b"\x00"),
                                         ("x-request-id", "r1"))


def test_routed_needs_a_node_or_an_alias():
    assert routed((("x-node-id", "n"),)) and routed((("x-node-alias", "a"),))
    assert not routed((("x-test", "n"),)) and not routed(None)


def test_keys_mirror_the_rest_side():
    routes = Routes()
    route = routes.add_node("n", hash_key("right"))
    check_key(route, "node", "n", {"authorization": "Bearer right"})
    check_key(route, "node", "n", {"authorization": "bearer  right "})
    for headers, code in (({}, Code.UNAUTHENTICATED),
                          ({"authorization": "Bearer wrong"}, Code.PERMISSION_DENIED),
                          ({"authorization": "Basic right"}, Code.PERMISSION_DENIED),
                          ({"authorization": "Bearer "}, Code.PERMISSION_DENIED)):
        with pytest.raises(Refused) as refused:
            check_key(route, "node", "n", headers)
        assert refused.value.code == code
    routes.set_alias("open", "", True, {"n": 100}, None, None)
    check_key(routes.aliases["open"], "alias", "open", {})  # public: no key needed


def _passthrough(**nodes: str) -> tuple[GrpcPassthrough, Routes]:
    """Nodes by name: "grpc" or "http" (Docker-image nodes) or "checkpoint"."""
    routes = Routes()
    for name, kind in nodes.items():
        route = routes.add_node(name, hash_key("k"))
        route.passthrough = kind != "checkpoint"
        route.protocol = "grpc" if kind == "grpc" else "http"
    return GrpcPassthrough(Gateway(routes)), routes


def test_an_alias_picks_a_grpc_node_with_an_instance():
    passthrough, routes = _passthrough(a="grpc", b="grpc", c="checkpoint", d="http")
    routes.add_backend("b", "b-1", "127.0.0.1", 1, lambda payload: [])
    routes.set_alias("x", "", True, {"a": 90, "b": 10, "c": 50, "d": 50}, None, None)
    # a has no instance: b serves, whatever the weights say; c and d cannot take gRPC
    assert {passthrough._alias_node(routes.aliases["x"], {}).node for _ in range(20)} == {"b"}
    routes.set_alias("none", "", True, {"c": 50, "d": 50}, None, None)
    with pytest.raises(Refused) as refused:
        passthrough._alias_node(routes.aliases["none"], {})
    assert refused.value.code == Code.UNIMPLEMENTED and "speaks gRPC" in refused.value.message


def test_a_node_that_does_not_speak_grpc_says_how_to_call_it():
    passthrough, _ = _passthrough(c="checkpoint", d="http")
    for node, words in (("c", "Node/Execute"), ("d", "HTTP port")):
        with pytest.raises(Refused) as refused:
            passthrough._route(None, node, {"authorization": "Bearer k"})
        assert refused.value.code == Code.UNIMPLEMENTED and words in refused.value.message
    with pytest.raises(Refused) as refused:
        passthrough._route(None, "missing", {"authorization": "Bearer k"})
    assert refused.value.code == Code.NOT_FOUND


def test_only_calls_for_a_grpc_node_are_taken_before_the_gateways_own_methods():
    passthrough, routes = _passthrough(g="grpc", c="checkpoint", h="http")
    routes.set_alias("mixed", "", True, {"c": 50, "g": 50}, None, None)
    routes.set_alias("plain", "", True, {"c": 50, "h": 50}, None, None)
    takes = passthrough.for_grpc_node
    assert takes((("x-node-id", "g"),)) and takes((("x-node-alias", "mixed"),))
    for metadata in ((("x-node-id", "c"),), (("x-node-id", "h"),), (("x-node-id", "nope"),),
                     (("x-node-alias", "plain"),), (("x-node-alias", "nope"),), ()):
        assert not takes(metadata), metadata


def test_the_gateways_own_services_stay_its_own():
    passthrough, _ = _passthrough(g="grpc")
    details = namedtuple("Details", "method invocation_metadata")

    async def own(found: Any) -> str:
        return "the gateway's"

    def served(method: str) -> Any:
        call = details(method, (("x-node-id", "g"),))
        return asyncio.run(passthrough.interceptor.intercept_service(own, call))

    assert served("/jupyter_deploy.Gateway/Execute") == "the gateway's"
    assert served("/jupyter_deploy.nodes.g.Node/Execute") == "the gateway's"
    for method in ("/grpc.health.v1.Health/Check", "/echo.Echo/Unary"):
        assert served(method) not in (None, "the gateway's")  # the pass-through's handler


def test_protocol_grpc_makes_the_health_check_grpc_unless_told_otherwise():
    body = {"image": "scorer:1", "port": 50051, "protocol": "grpc"}
    node = image_node("scorer", "docker", body, "")
    changes, _ = container_settings(node, body, {}, creating=True)
    assert changes["protocol"] == changes["health.protocol"] == "grpc"
    told = {**body, "health": {"protocol": "http", "path": "/healthz"}}
    changes, _ = container_settings(node, told, {}, creating=True)
    assert changes["health.protocol"] == "http"
    changes, _ = container_settings(node, {"image": "web:1", "port": 80}, {}, creating=True)
    assert "health.protocol" not in changes
