"""Docker-image nodes that speak gRPC (issue 15, item 3): any method, streaming included,
through the gateway's gRPC port by `x-node-id` / `x-node-alias`, with a real grpcio server in
a real container and a real grpcio client; health by grpc.health.v1."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from jupyter_deploy.runtimes.images import ca_bundle

from ..conftest import Service, checkpoint_body, wait_for
from . import test_docker
from .test_docker import BASE, FAST_HEALTH, containers, gateway

APP = Path(__file__).resolve().parent / "grpc_app"
# a tag of this run's own: the engine is shared, and another run removes its image at the end
IMAGE = f"jupyter-deploy-test-grpc:{os.getpid()}"
Code = grpc.StatusCode
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def engine() -> Any:
    client = test_docker._engine()
    if isinstance(client, str):
        pytest.skip(f"no Docker engine: {client}")
    return client


@pytest.fixture(scope="module")
def grpc_image(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The test's gRPC server, FROM the local base image (pip trusts the host's CA bundle)."""
    context = tmp_path_factory.mktemp("grpc_app")
    shutil.copytree(APP, context, dirs_exist_ok=True)
    bundle = ca_bundle()
    (context / "ca.crt").write_bytes(bundle.read_bytes() if bundle else b"")
    image, _ = engine.images.build(path=str(context), buildargs={"BASE": BASE}, rm=True,
                                   tag=IMAGE)
    yield image
    engine.images.remove(image.id, force=True)


def grpc_node(service: Service, name: str, **spec: Any) -> str:
    """Create a gRPC image node, wait until it is Healthy; its key."""
    health = {"protocol": "grpc", **FAST_HEALTH, **spec.pop("health", {})}
    created = service.client.create_node({"name": name, "image": IMAGE, "port": 50051,
                                          "protocol": "grpc", "health": health, **spec})
    wait_for(lambda: service.client.node(name)["status"] == "Healthy", timeout=60,
             message=f"node {name} to be Healthy")
    return created["key"]


@pytest.fixture(scope="module")
def echo(service: Service, engine: Any, grpc_image: Any) -> Iterator[tuple[str, str]]:
    """A node of two instances of the gRPC server: (name, key)."""
    key = grpc_node(service, "grpc-echo", min=2)
    yield "grpc-echo", key
    service.client.delete_node("grpc-echo")
    assert not containers(engine, "grpc-echo")


@pytest.fixture
def channel(service: Service) -> Iterator[grpc.Channel]:
    limit = 32 * 1024 * 1024  # above the gateway's 16 MB: its own limit must answer
    with grpc.insecure_channel(service.grpc_address, options=[
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit)]) as opened:
        yield opened


def meta(node: str, key: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return (("x-node-id", node), ("authorization", f"Bearer {key}"), *extra.items())


def unary(channel: grpc.Channel, method: str) -> Any:
    return channel.unary_unary(f"/echo.Echo/{method}")


def test_unary_call_passes_through(channel, echo, service):
    node, key = echo
    answer, call = unary(channel, "Unary").with_call(
        b"hello", metadata=meta(node, key, **{"x-test": "yes", "x-trace-bin": b"\x01\x02",
                                              "x-request-id": "call-1"}), timeout=2.0)
    echoed = json.loads(answer)
    assert echoed["request"] == "hello"
    sent = echoed["metadata"]
    assert sent["x-test"] == "yes" and sent["x-trace-bin"] == "0102"
    # the key and the routing headers stay at the gateway
    assert not {"authorization", "x-node-id", "x-node-alias"} & set(sent)
    assert 0 < echoed["time_remaining"] <= 2.0  # the caller's deadline reached the server
    trailing = dict(call.trailing_metadata())
    assert trailing["x-app-trailer"] == "unary"
    assert trailing["x-request-id"] == sent["x-request-id"] == "call-1"
    instances = {i["id"] for i in service.client.node(node)["instances"]}
    assert trailing["x-instance-id"] in instances
    # the server's own status, message and trailing metadata come back as it sent them
    with pytest.raises(grpc.RpcError) as failed:
        unary(channel, "Unary").with_call(b"fail", metadata=meta(node, key), timeout=5)
    assert failed.value.code() == Code.FAILED_PRECONDITION
    assert failed.value.details() == "told to fail"
    assert dict(failed.value.trailing_metadata())["x-app-reason"] == "asked to"
    codes = {(s.labels["node_path"], s.labels["code"]) for family in
             text_string_to_metric_families(test_docker.gateway_metrics(service))
             if family.name == "node_grpc_codes" for s in family.samples
             if s.labels.get("node_id") == node}
    assert {("/echo.Echo/Unary", "OK"), ("/echo.Echo/Unary", "FAILED_PRECONDITION")} <= codes


def test_reflection_lists_the_nodes_services(channel, echo):
    # as `grpcurl -H "x-node-id: NODE" ... list` asks it: the node's reflection, not the gateway's
    node, key = echo
    info = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
    answers = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                   metadata=meta(node, key), timeout=5)
    (answer,) = list(answers)
    names = {s.name for s in answer.list_services_response.service}
    assert "echo.Echo" in names and "jupyter_deploy.Gateway" not in names


def test_streaming_calls_pass_through(channel, echo):
    node, key = echo
    count = channel.unary_stream("/echo.Echo/Count")
    assert list(count(b"5", metadata=meta(node, key), timeout=5)) == [b"0", b"1", b"2", b"3",
                                                                      b"4"]
    total = channel.stream_unary("/echo.Echo/Sum")
    assert total(iter([b"1", b"2", b"39"]), metadata=meta(node, key), timeout=5) == b"42"
    # bidi: each answer comes before the next message is sent, so nothing waits for the end
    outbox: queue.Queue[bytes | None] = queue.Queue()
    chat = channel.stream_stream("/echo.Echo/Chat")(iter(outbox.get, None),
                                                     metadata=meta(node, key), timeout=10)
    for word in (b"one", b"two", b"three"):
        outbox.put(word)
        assert next(chat) == b"echo:" + word
    outbox.put(None)
    assert list(chat) == []
    assert chat.code() == Code.OK


def test_refusals(channel, echo, service):
    node, key = echo
    call = unary(channel, "Unary")
    cases = [
        ((("x-node-id", node),), Code.UNAUTHENTICATED),
        (meta(node, "jd_wrong"), Code.PERMISSION_DENIED),
        (meta("no-such-node", key), Code.NOT_FOUND),
        ((("x-node-alias", "no-such-alias"), ("authorization", f"Bearer {key}")),
         Code.NOT_FOUND),
        ((("authorization", f"Bearer {key}"),), Code.UNIMPLEMENTED),  # no node named
    ]
    for metadata, code in cases:
        with pytest.raises(grpc.RpcError) as refused:
            call(b"hello", metadata=metadata, timeout=5)
        assert refused.value.code() == code, (metadata, refused.value.details())
    # over HTTP the node says where to call it, rather than a 502
    status, _, body = gateway(service.gateway_url, "/echo.Echo/Unary", key, "POST", b"x",
                              {"x-node-id": node})
    assert status == 400, body
    error = json.loads(body)["error"]
    assert "gRPC" in error["message"] and error["code"] == "grpc_node"


def test_least_loaded_instance_takes_the_call(channel, echo):
    node, key = echo
    # a stream held open keeps one instance busy (its first answer shows it is under way)
    outbox: queue.Queue[bytes | None] = queue.Queue()
    busy = channel.stream_stream("/echo.Echo/Chat")(iter(outbox.get, None),
                                                     metadata=meta(node, key), timeout=10)
    outbox.put(b"hold")
    assert next(busy) == b"echo:hold"
    _, call = unary(channel, "Unary").with_call(b"x", metadata=meta(node, key), timeout=5)
    outbox.put(None)
    assert list(busy) == []
    held = dict(busy.trailing_metadata())["x-instance-id"]
    assert dict(call.trailing_metadata())["x-instance-id"] != held  # the idle one took it


def test_nodes_that_do_not_speak_grpc(channel, service):
    body = checkpoint_body("grpcpass-add", "total = a + b", "a:float,b:float", "total",
                           a=1.0, b=2.0)
    _, key = service.create_node("grpcpass-add", body)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            unary(channel, "Unary")(b"x", metadata=meta("grpcpass-add", key), timeout=5)
        assert refused.value.code() == Code.UNIMPLEMENTED
        assert "jupyter_deploy.nodes.grpcpass_add.Node/Execute" in refused.value.details()
    finally:
        service.client.delete_node("grpcpass-add")


def test_limits_and_deadlines(channel, echo):
    node, key = echo
    big = 17 * 1024 * 1024
    with pytest.raises(grpc.RpcError) as answered:
        unary(channel, "Big")(str(big).encode(), metadata=meta(node, key), timeout=10)
    assert answered.value.code() == Code.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as sent:
        unary(channel, "Unary")(b"x" * big, metadata=meta(node, key), timeout=10)
    assert sent.value.code() == Code.RESOURCE_EXHAUSTED
    assert len(unary(channel, "Big")(b"1000000", metadata=meta(node, key), timeout=10)) == \
        1_000_000
    with pytest.raises(grpc.RpcError) as late:
        unary(channel, "Sleep")(b"5", metadata=meta(node, key), timeout=0.5)
    assert late.value.code() == Code.DEADLINE_EXCEEDED


def test_alias_in_front_of_a_grpc_node(channel, echo, service):
    node, _ = echo
    alias_key = service.client.set_alias("grpc-front", {"nodes": {node: 100}})["key"]
    try:
        metadata = (("x-node-alias", "grpc-front"), ("authorization", f"Bearer {alias_key}"))
        answer, call = unary(channel, "Unary").with_call(b"via alias", metadata=metadata,
                                                         timeout=5)
        assert json.loads(answer)["request"] == "via alias"
        assert dict(call.trailing_metadata())["x-node-id"] == node
        count = channel.unary_stream("/echo.Echo/Count")
        assert len(list(count(b"3", metadata=metadata, timeout=5))) == 3
        with pytest.raises(grpc.RpcError) as refused:
            unary(channel, "Unary")(b"x", metadata=(("x-node-alias", "grpc-front"),
                                                    ("authorization", "Bearer jd_wrong")))
        assert refused.value.code() == Code.PERMISSION_DENIED
    finally:
        service.client.delete_alias("grpc-front")


def test_grpc_health_check_marks_the_node(channel, service, engine, grpc_image):
    # As a user creates it: --protocol grpc alone makes the health check grpc.health.v1 (an
    # HTTP probe of a gRPC port can only fail).
    cli = subprocess.run(
        [sys.executable, "-m", "jupyter_deploy.cli", "node", "create", "grpc-sick", "--image",
         IMAGE, "--port", "50051", "--protocol", "grpc", "--health-interval", "0.2",
         "--health-fail", "2", "--health-pass", "1", "--timeout", "60"],
        env=service.kernel_env, cwd=service.root, capture_output=True, text=True, timeout=90)
    try:
        assert cli.returncode == 0, cli.stderr
        key = cli.stdout.split("key:")[1].split()[0]
        assert service.client.node("grpc-sick")["health"]["protocol"] == "grpc"
        wait_for(lambda: service.client.node("grpc-sick")["status"] == "Healthy", timeout=60,
                 message="node grpc-sick to be Healthy by grpc.health.v1")
        # with x-node-id, grpc.health.v1 is the node's own, not the gateway's
        check = health_pb2_grpc.HealthStub(channel).Check
        request = health_pb2.HealthCheckRequest()
        assert check(request, metadata=meta("grpc-sick", key), timeout=5).status == SERVING
        unary(channel, "Sick")(b"", metadata=meta("grpc-sick", key), timeout=5)
        assert check(request, metadata=meta("grpc-sick", key), timeout=5).status == NOT_SERVING
        wait_for(lambda: service.client.node("grpc-sick")["status"] == "Unhealthy",
                 timeout=30, message="NOT_SERVING to make the node Unhealthy")
    finally:
        service.client.delete_node("grpc-sick")
    assert not containers(engine, "grpc-sick")


def test_a_node_scaled_to_zero_holds_the_call_until_an_instance_serves(channel, service,
                                                                       engine, grpc_image):
    created = service.client.create_node({
        "name": "grpc-cold", "image": IMAGE, "port": 50051, "protocol": "grpc", "min": 0,
        "max": 1, "session_timeout_s": 60, "health": dict(FAST_HEALTH)})
    try:
        assert service.client.node("grpc-cold")["instances"] == []
        answer = unary(channel, "Unary")(b"wake", metadata=meta("grpc-cold", created["key"]),
                                         timeout=60)
        assert json.loads(answer)["request"] == "wake"
    finally:
        service.client.delete_node("grpc-cold")
    assert not containers(engine, "grpc-cold")
