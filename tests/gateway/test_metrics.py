"""The gateway's `GET /metrics`: request counts by node, alias and code, the instances'
own metrics and the cells' custom metrics, with node_id and instance_id."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_deploy import metrics

from ..conftest import checkpoint_body, wait_for
from .test_gateway import post

COUNTING = """from jupyter_deploy import metrics
metrics.counter("predictions", "Predictions made").inc()
total = a / b
"""


def scrape(service) -> dict:
    """The families at the gateway's /metrics (no key), by name."""
    with urllib.request.urlopen(service.gateway_url + "/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(families: dict, family: str, sample: str, **labels: str) -> dict[str, float]:
    """{code or instance_id: value} of the samples carrying `labels`."""
    found = {}
    for item in families[family].samples:
        if item.name == sample and all(item.labels.get(k) == v for k, v in labels.items()):
            key = item.labels.get("code") or item.labels.get("instance_id") or ""
            found[key] = found.get(key, 0) + item.value
    return found


@pytest.fixture(scope="module")
def counting(service) -> Iterator[tuple[dict, str]]:
    yield service.create_node("metrics-counting", checkpoint_body(
        "metrics-counting", COUNTING, "a:float,b:float", "total", a=1.0, b=2.0), min=2)
    service.client.delete_node("metrics-counting")


def test_requests_are_counted_by_node_and_code(counting, service):
    node, key = counting
    name, path = "metrics-counting", "/v1/nodes/metrics-counting:execute"
    for _ in range(3):
        assert post(node["endpoint"], {"input": {"a": 1, "b": 2}}, key)[0] == 200
    for _ in range(2):
        assert post(node["endpoint"], {"input": {"a": "one"}}, key)[0] == 422
    assert post(node["endpoint"], {"input": {"a": 1, "b": 0}}, key)[0] == 500
    assert post(node["endpoint"], {"input": {"a": 1, "b": 2}})[0] == 401
    families = scrape(service)
    labels = {"node_id": name, "node_path": path}
    assert values(families, "node_requests", "node_requests_total", **labels) == {"": 7}
    assert values(families, "node_http_codes", "node_http_codes_total", **labels) == {
        "200": 3, "422": 2, "500": 1, "401": 1}
    durations = values(families, "node_request_durations", "node_request_durations_count",
                       **labels)
    assert durations == {"": 6}  # a refusal from the headers alone takes no time to time
    assert "node_grpc_codes" in families and "alias_grpc_codes" in families

    # what the instances count: the cell ran 4 times (the gateway refused the rest)
    instances = {i["id"] for i in service.client.node(name)["instances"]}
    custom = values(families, "predictions", "predictions_total", node_id=name)
    assert set(custom) <= instances and sum(custom.values()) == 4
    ran = values(families, "instance_execution_seconds", "instance_execution_seconds_count",
                 node_id=name)
    assert set(ran) == instances and sum(ran.values()) == 4
    waited = values(families, "instance_queue_wait_seconds",
                    "instance_queue_wait_seconds_count", node_id=name)
    assert sum(waited.values()) == 4
    errors = values(families, "instance_errors", "instance_errors_total", node_id=name,
                    kind="cell_error")
    assert sum(errors.values()) == 1

    # the panel's sparklines: the same counters, summed, from the control API
    stats = service.client.request("GET", f"/nodes/{name}/stats")
    assert stats["requests"] == 7 and stats["errors"] == 1
    assert stats["duration_sum"] > 0 and stats["time"] > 0


def test_alias_requests_count_for_the_alias_and_its_node(service):
    node, key = service.create_node("metrics-aliased", checkpoint_body(
        "metrics-aliased", "total = a + b", "a:float,b:float", "total", a=1.0, b=2.0))
    alias = service.client.set_alias("metrics-alias", {"nodes": {"metrics-aliased": 100},
                                                       "public": True})["alias"]
    try:
        for body, status in [({"a": 1, "b": 2}, 200), ({"a": 3, "b": 4}, 200), ({"a": "x"}, 422)]:
            assert post(alias["endpoint"], {"input": body})[0] == status
        assert post(node["endpoint"], {"input": {"a": 1, "b": 2}}, key)[0] == 200
        families = scrape(service)
        path = "/v1/aliases/metrics-alias:execute"
        assert values(families, "alias_http_codes", "alias_http_codes_total",
                      alias_name="metrics-alias", alias_path=path) == {"200": 2, "422": 1}
        assert values(families, "alias_requests", "alias_requests_total",
                      alias_name="metrics-alias") == {"": 3}
        assert values(families, "alias_request_durations", "alias_request_durations_count",
                      alias_name="metrics-alias") == {"": 3}
        assert values(families, "node_http_codes", "node_http_codes_total",
                      node_id="metrics-aliased", node_path=path) == {"200": 2, "422": 1}
        assert values(families, "node_requests", "node_requests_total",
                      node_id="metrics-aliased") == {"": 4}
    finally:
        service.client.delete_alias("metrics-alias")
        service.client.delete_node("metrics-aliased")
    families = scrape(service)  # gone with them
    assert not values(families, "node_requests", "node_requests_total", node_id="metrics-aliased")
    assert not values(families, "alias_requests", "alias_requests_total",
                      alias_name="metrics-alias")


def test_an_instance_that_does_not_answer_is_left_out(counting, service):
    node, key = counting
    assert post(node["endpoint"], {"input": {"a": 1, "b": 2}}, key)[0] == 200
    instances = service.client.node("metrics-counting")["instances"]
    stopped, running = instances[0], instances[1]
    os.kill(stopped["pid"], signal.SIGSTOP)
    try:
        families = scrape(service)
        ran = values(families, "instance_execution_seconds", "instance_execution_seconds_count",
                     node_id="metrics-counting")
        assert running["id"] in ran and stopped["id"] not in ran
    finally:
        os.kill(stopped["pid"], signal.SIGCONT)
    wait_for(lambda: stopped["id"] in values(
        scrape(service), "instance_execution_seconds", "instance_execution_seconds_count",
        node_id="metrics-counting"), message="the instance to be scraped again")


def test_the_metrics_helper_gets_or_makes_by_name():
    first = metrics.counter("helper_calls", "Calls")
    first.inc()
    metrics.counter("helper_calls", "Calls").inc(2)
    assert metrics.counter("helper_calls") is first
    assert metrics.REGISTRY.get_sample_value("helper_calls_total") == 3
    metrics.histogram("helper_seconds", "Seconds", ["kind"], buckets=(0.1, 1)).labels(
        "a").observe(0.5)
    assert metrics.REGISTRY.get_sample_value("helper_seconds_count", {"kind": "a"}) == 1
    with pytest.raises(ValueError, match="exists already as a Counter"):
        metrics.gauge("helper_calls")


def test_grpc_calls_are_counted_by_code_and_carry_request_ids(service):
    import grpc
    from google.protobuf import struct_pb2

    name = "metrics-grpc"
    node, key = service.create_node(name, checkpoint_body(
        name, "y = x * 2", "x:int", "y:int", x=1))
    try:
        with grpc.insecure_channel(service.grpc_address) as channel:
            execute = channel.unary_unary(
                "/jupyter_deploy.Gateway/Execute",
                request_serializer=struct_pb2.Struct.SerializeToString,
                response_deserializer=struct_pb2.Struct.FromString)
            metadata = (("authorization", f"Bearer {key}"), ("x-node-id", name),
                        ("x-request-id", "grpc-call-1"))
            for x in (1, 2):
                reply, call = execute.with_call(struct_pb2.Struct(fields={
                    "x": struct_pb2.Value(number_value=x)}), metadata=metadata, timeout=30)
                assert reply["y"] == 2 * x
                assert ("x-request-id", "grpc-call-1") in call.trailing_metadata()
            with pytest.raises(grpc.RpcError) as refused:
                execute(struct_pb2.Struct(fields={"x": struct_pb2.Value(string_value="no")}),
                        metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        families = scrape(service)
        assert values(families, "node_grpc_codes", "node_grpc_codes_total", node_id=name) == {
            "OK": 2, "INVALID_ARGUMENT": 1}
        assert values(families, "node_http_codes", "node_http_codes_total", node_id=name) == {}
    finally:
        service.client.delete_node(name)
