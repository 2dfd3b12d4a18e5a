"""The gateway's `GET /metrics`: request counts by node, alias and code, the instances'
own metrics and the cells' custom metrics, with node_id and instance_id."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_deploy import metrics
from jupyter_deploy.gateway.metrics import GatewayMetrics
from jupyter_deploy.gateway.scraped import merge

from ..conftest import checkpoint_body, wait_for
from ..runtimes.test_docker import BASE, FAST_HEALTH, engine  # noqa: F401 - the engine fixture
from .test_gateway import post

COUNTING = """from jupyter_deploy import metrics
from jupyter_deploy.gateway.metrics import GatewayMetrics
from jupyter_deploy.gateway.scraped import merge
metrics.counter("predictions", "Predictions made").inc()
total = a / b
"""


PROMTOOL = os.environ.get("JUPYTER_DEPLOY_PROMTOOL", "/usr/bin/promtool")


def exposition(service) -> str:
    """The gateway's /metrics page (no key), checked by Prometheus's own `promtool`: a page
    it rejects would make Prometheus drop every sample of the scrape."""
    with urllib.request.urlopen(service.gateway_url + "/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return promtool_checked(text)


def promtool_checked(text: str) -> str:
    """`text`, once `promtool check metrics` (parse and lint) has nothing to say about it;
    without promtool, the other assertions still run (test_promtool_is_here says so)."""
    if shutil.which(PROMTOOL) is None:
        return text
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, f"promtool: {checked.stdout}{checked.stderr}\n{text}"
    return text


def test_promtool_is_here():
    if shutil.which(PROMTOOL) is None:
        pytest.skip(f"no promtool at {PROMTOOL}, so no /metrics page here was checked by it: "
                    "`make test` installs Debian's prometheus")


def scrape(service) -> dict:
    """The families at the gateway's /metrics, by name."""
    return {family.name: family for family in text_string_to_metric_families(
        exposition(service))}


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


HITS = """from jupyter_deploy import metrics
from jupyter_deploy.gateway.metrics import GatewayMetrics
from jupyter_deploy.gateway.scraped import merge
metrics.counter("app_hits", "Hits").inc()
y = x
"""
CLASHING = """from jupyter_deploy import metrics
from jupyter_deploy.gateway.metrics import GatewayMetrics
from jupyter_deploy.gateway.scraped import merge
metrics.gauge("app_hits_total", "Hits, as a gauge").set(7)
metrics.counter("node_requests", "A name the gateway uses").inc()
y = x
"""


def node_events(service, node: str) -> list[str]:
    return [e["message"] for e in service.client.events(node=node)]


def test_families_that_clash_are_left_out_with_a_node_event(service):
    hits, hits_key = service.create_node("metrics-hits", checkpoint_body(
        "metrics-hits", HITS, "x:int", "y:int", x=1))
    metrics.forget_all()  # the cells ran in this process too, where the names clash at once
    clashing, key = service.create_node("metrics-clash", checkpoint_body(
        "metrics-clash", CLASHING, "x:int", "y:int", x=1))
    try:
        assert post(hits["endpoint"], {"input": {"x": 1}}, hits_key)[0] == 200
        assert post(clashing["endpoint"], {"input": {"x": 1}}, key)[0] == 200
        for _ in range(2):  # each scrape passes promtool; the clash is told once
            families = scrape(service)
        hits = families["app_hits"]
        assert hits.type == "counter"
        assert {s.labels["node_id"] for s in hits.samples} == {"metrics-hits"}
        assert not values(families, "node_requests", "node_requests_total",
                          node_id="metrics-clash", instance_id=clashing["instances"][0]["id"])
        told = [m for m in node_events(service, "metrics-clash") if "left out" in m]
        assert len(told) == 2, told
        assert any("app_hits_total" in m and "gauge" in m for m in told), told
        assert any("node_requests" in m and "the gateway's" in m for m in told), told
        assert not [m for m in node_events(service, "metrics-hits") if "left out" in m]
    finally:
        service.client.delete_node("metrics-clash")
        service.client.delete_node("metrics-hits")


# An image that names a counter by its base name and its sample with `_total`, as some
# exporters do: Prometheus's parser takes them for two families.
IMAGE_METRICS = "# TYPE app_hits counter\napp_hits_total 7\n# TYPE app_up gauge\napp_up 1\n"
SERVER = f"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {IMAGE_METRICS!r}.encode() if self.path == "/metrics" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))),
                    Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def exporter_image(engine: Any) -> Iterator[str]:  # noqa: F811
    """An image FROM the local base image that serves IMAGE_METRICS at /metrics."""
    dockerfile = f"FROM {BASE}\nCMD {json.dumps(['python3', '-c', SERVER])}\n"
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True,
                                   tag="jupyter-deploy-test-exporter:latest")
    yield "jupyter-deploy-test-exporter:latest"
    engine.images.remove(image.id, force=True)


def test_an_image_counter_named_by_its_base_is_served_as_one_family(service, exporter_image):
    created = service.client.create_node({
        "name": "metrics-exporter", "image": exporter_image, "port": 8080,
        "health": {"path": "/", **FAST_HEALTH}, "telemetry": {"path": "/metrics"}})
    assert created["key"]
    try:
        wait_for(lambda: service.client.node("metrics-exporter")["status"] == "Healthy",
                 timeout=60, message="the exporter node to be Healthy")
        [instance] = service.client.node("metrics-exporter")["instances"]
        families = scrape(service)
        assert families["app_hits"].type == "counter"
        assert values(families, "app_hits", "app_hits_total", node_id="metrics-exporter") == {
            instance["id"]: 7}
        assert values(families, "app_up", "app_up", node_id="metrics-exporter") == {
            instance["id"]: 1}
    finally:
        service.client.delete_node("metrics-exporter")


def test_pages_merge_into_one_exposition_that_prometheus_takes():
    pages = [
        ("a", "a-1", "# TYPE app_hits counter\napp_hits_total 7\napp_hits_created 1\n"),
        ("a", "a-2", "# HELP app_hits_total Hits.\n# TYPE app_hits_total counter\n"
                     "app_hits_total 2\napp_hits_total 2\n"),  # the same series twice
        ("b", "b-1", "# TYPE app_hits gauge\napp_hits 1\n# TYPE lat histogram\n"
                     'lat_bucket{le="1.0"} 1\nlat_bucket{le="+Inf"} 1\nlat_sum 0.5\n'
                     "lat_count 1\n"),
        ("b", "b-2", "no metrics here {"),
        ("c", "c-1", "# TYPE node_requests counter\nnode_requests 3\n# TYPE lat_count gauge\n"
                     "lat_count 4\n"),
    ]
    families, clashes = merge(pages, GatewayMetrics().own())
    assert [(c.node, c.instance, c.family, c.kind) for c in clashes] == [
        ("b", "b-1", "app_hits", "gauge"), ("b", "b-2", "", ""),
        ("c", "c-1", "node_requests", "counter"), ("c", "c-1", "lat_count", "gauge")]
    assert "the gateway's own family node_requests" in clashes[2].message()
    assert "taken by lat (histogram) of instance b-1" in clashes[3].message()
    text = promtool_checked(GatewayMetrics.text(families))
    merged = {family.name: family for family in text_string_to_metric_families(text)}
    assert {(s.labels["instance_id"], s.value) for s in merged["app_hits"].samples} == {
        ("a-1", 7), ("a-2", 2)}
    assert merged["lat"].type == "histogram" and len(merged["lat"].samples) == 4
