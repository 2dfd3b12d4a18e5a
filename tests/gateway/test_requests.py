"""Request capture on a standalone service: the gateway samples a node's requests with their
answers; the control API, the CLI and `%deploy requests` (a DataFrame in a real kernel)
read them back."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from jupyter_deploy.client import ClientError

from ..conftest import checkpoint_body
from ..kernel.test_magics import kernel  # noqa: F401 - a kernel of this module's own
from .test_gateway import post

ADDER = dict(source="total = a + b", inputs="a:float,b:float", outputs="total", a=1.0, b=2.0)


def requests(service, node: str, last: int = 100) -> list[dict[str, Any]]:
    return service.client.requests(node, last)["requests"]


def send_mix(node: dict[str, Any], key: str, count: int = 5) -> list[int]:
    """Alternate good inputs (200) with a wrong type (422)."""
    statuses = []
    for i in range(count):
        value: Any = float(i) if i % 2 == 0 else "not a number"
        statuses.append(post(node["endpoint"], {"input": {"a": value, "b": 1.0}}, key)[0])
    return statuses


@pytest.fixture(scope="module")
def captured(service):
    node, key = service.create_node("captured", checkpoint_body("captured", **ADDER),
                                    capture={"percent": 100})
    yield node, key
    service.client.delete_node("captured")


def test_every_request_is_captured_with_its_answer(captured, service):
    node, key = captured
    assert node["capture"] == {"percent": 100, "limit": 1000}
    assert send_mix(node, key) == [200, 422, 200, 422, 200]
    rows = requests(service, "captured")
    assert [r["status"] for r in rows] == [200, 422, 200, 422, 200]
    assert [r["input"] for r in rows] == [{"a": 0.0, "b": 1.0}, {"a": "not a number", "b": 1.0},
                                          {"a": 2.0, "b": 1.0}, {"a": "not a number", "b": 1.0},
                                          {"a": 4.0, "b": 1.0}]
    assert [r["output"] for r in rows] == [{"total": 1.0}, None, {"total": 3.0}, None,
                                           {"total": 5.0}]
    assert rows[1]["error"]["error"]["field"] == "input.a"
    assert rows[0]["instance"] == node["instances"][0]["id"] and rows[1]["instance"] is None
    assert all(r["latency_ms"] > 0 for r in rows)
    assert rows == sorted(rows, key=lambda r: r["time"])  # newest last
    assert requests(service, "captured", last=2) == rows[-2:]


def test_requests_through_an_alias_are_captured_by_the_node_that_served(captured, service):
    service.client.set_alias("captured-alias", {"nodes": {"captured": 100}, "public": True})
    try:
        status, body, headers = post(
            service.gateway_url + "/v1/aliases/captured-alias:execute",
            {"input": {"a": 7.0, "b": 1.0}})
        assert (status, body) == (200, {"output": {"total": 8.0}})
        row = requests(service, "captured", last=1)[0]
        assert (row["input"], row["instance"], row["request_id"]) == (
            {"a": 7.0, "b": 1.0}, headers["x-instance-id"], headers["x-request-id"])
    finally:
        service.client.delete_alias("captured-alias")


def test_limit_bounds_what_is_kept(service):
    node, key = service.create_node("captured-few", checkpoint_body("captured-few", **ADDER),
                                    capture={"percent": 100, "limit": 3})
    send_mix(node, key, 5)
    assert [r["input"]["a"] for r in requests(service, "captured-few")] == [
        2.0, "not a number", 4.0]
    service.client.update_node("captured-few", {"capture": {"limit": 2}})
    send_mix(node, key, 1)
    assert [r["input"]["a"] for r in requests(service, "captured-few")] == [4.0, 0.0]
    service.client.update_node("captured-few", {"capture": None})
    send_mix(node, key, 1)
    assert len(requests(service, "captured-few")) == 2  # off: nothing new, the rest kept
    service.client.delete_node("captured-few")
    # a node made again under the same name starts with nothing captured
    service.client.create_node({"name": "captured-few", "checkpoint": "captured-few"})
    assert requests(service, "captured-few") == []
    service.client.delete_node("captured-few")


def test_capture_is_off_by_default_and_checked(service):
    node, key = service.create_node("uncaptured", checkpoint_body("uncaptured", **ADDER))
    assert node["capture"] is None
    send_mix(node, key, 2)
    assert requests(service, "uncaptured") == []
    for capture, field in (({"percent": 101}, "capture.percent"), (10, "capture"),
                           ({"percent": 10, "limit": 0}, "capture.limit"),
                           ({"share": 10}, "capture.share")):
        with pytest.raises(ClientError) as info:
            service.client.update_node("uncaptured", {"capture": capture})
        assert (info.value.status, info.value.body["error"]["field"]) == (422, field)
    with pytest.raises(ClientError) as info:
        service.client.requests("uncaptured", last=0)
    assert (info.value.status, info.value.body["error"]["field"]) == (422, "last")
    service.client.delete_node("uncaptured")


def test_large_bodies_are_kept_as_their_size(captured, service):
    node, key = captured
    text = "x" * (1024 * 1024 + 10)
    sent = {"input": {"a": 1.0, "b": 2.0}, "pad": text}
    status, body, _ = post(node["endpoint"], sent, key)
    assert status == 200
    row = requests(service, "captured", last=1)[0]
    assert row["input"] is None and row["output"] == {"total": 3.0}
    assert row["omitted"] == f"not kept, over 1 MB: input ({len(json.dumps(sent))} bytes)"


def test_cli_prints_a_table_or_json_lines(captured, service, tmp_path):
    def deploy(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", *args],
                              env=service.env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    node, key = captured
    post(node["endpoint"], {"input": {"a": 20.0, "b": 22.0}}, key)
    post(node["endpoint"], {"input": {"a": "x", "b": 22.0}}, key)
    table = deploy("requests", "captured", "--last", "2").splitlines()
    assert table[0].split() == ["TIME", "REQUEST", "ID", "INSTANCE", "STATUS", "LATENCY", "MS",
                                "INPUT", "OUTPUT", "OR", "ERROR"]
    assert '200' in table[1] and '{"a": 20.0, "b": 22.0}' in table[1]
    assert table[1].endswith('{"total": 42.0}')
    assert "422" in table[2] and "input.a:" in table[2]
    lines = [json.loads(line) for line in
             deploy("requests", "captured", "--last", "2", "--json").splitlines()]
    assert [(r["status"], r["output"]) for r in lines] == [(200, {"total": 42.0}), (422, None)]


def test_magics_capture_and_return_a_dataframe(kernel, service):  # noqa: F811
    kernel.ok("a, b = 1.0, 2.0")
    kernel.ok("%%deploy pin framed --inputs a:float,b:float --outputs total\ntotal = a + b")
    kernel.ok("%deploy node create framed-node --checkpoint framed --capture 100")
    kernel.ok("for a in (1.0, 2.0, 3.0):\n    %deploy call framed-node a={a} b=10\n"
              "for bad in ('x', 'y'):\n    try:\n        %deploy call framed-node a={bad!r} b=1\n"
              "    except Exception:\n        pass")
    status = kernel.ok("%deploy node status framed-node").stdout
    assert "capture:  100% of the requests, the last 1000 kept" in status
    shown = kernel.ok("df = %deploy requests framed-node --last 100\n"
                      "print(len(df), list(df.columns), df['time'].dtype)\n"
                      "print(df['output.total'].tolist(), df['status'].tolist())").stdout
    assert shown.splitlines() == [
        "5 ['time', 'request_id', 'instance', 'status', 'latency_ms', 'input.a', 'input.b', "
        "'output.total', 'error'] datetime64[ns, UTC]",
        "[11.0, 12.0, 13.0, nan, nan] [200, 200, 200, 422, 422]"]
    errors = kernel.ok("print(df['error'].tolist()[3])").stdout
    assert errors.startswith("input.a: ")
    kernel.ok("%deploy node delete framed-node")
