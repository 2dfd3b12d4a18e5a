"""The gateway of a standalone service, over real HTTP: routing, keys, limits, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from ..conftest import checkpoint_body, wait_for

MB = 1024 * 1024


def post(url: str, body: bytes | dict | None, key: str | None = None, **headers: str
         ) -> tuple[int, dict, Any]:
    """POST to the gateway; (status, JSON body, headers), errors included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


@pytest.fixture(scope="module")
def adder(service):
    node, key = service.create_node(
        "adder", checkpoint_body("adder", "total = (a + b) * scale", "a:float,b:float", "total",
                                 state={"scale": 2.0}, a=1.0, b=2.0), min=2)
    yield node, key
    service.client.delete_node("adder")


def test_execute_through_the_gateway(adder, service):
    node, key = adder
    status, body, headers = post(node["endpoint"], {"input": {"a": 1, "b": 2}}, key)
    assert (status, body) == (200, {"output": {"total": 6.0}})
    assert headers["x-instance-id"] in {i["id"] for i in node["instances"]}


def test_header_form_executes_on_root(adder, service):
    _, key = adder
    status, body, _ = post(service.gateway_url + "/", {"input": {"a": 2, "b": 3}}, key,
                           **{"x-node-id": "adder"})
    assert (status, body) == (200, {"output": {"total": 10.0}})
    status, body, _ = post(service.gateway_url + "/other", {"input": {}}, key,
                           **{"x-node-id": "adder"})
    assert status == 404 and body["error"]["code"] == "not_found"


def test_requests_share_the_load(adder, service):
    node, key = adder
    used = {post(node["endpoint"], {"input": {"a": 1, "b": 1}}, key)[2]["x-instance-id"]
            for _ in range(10)}
    assert len(used) == 2


def test_keys(adder, service):
    node, _ = adder
    status, body, headers = post(node["endpoint"], {"input": {"a": 1, "b": 2}})
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert body["error"]["code"] == "unauthorized"
    status, body, _ = post(node["endpoint"], {"input": {"a": 1, "b": 2}}, "jd_wrong")
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_unknown_node_and_path(adder, service):
    _, key = adder
    status, body, _ = post(service.gateway_url + "/v1/nodes/nobody:execute", {"input": {}}, key)
    assert status == 404 and body["error"]["field"] == "node"
    status, body, _ = post(service.gateway_url + "/v1/elsewhere", {"input": {}}, key)
    assert status == 404


def test_bad_input(adder, service):
    node, key = adder
    status, body, _ = post(node["endpoint"], b'{"input": {"a": 1,', key)
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body, _ = post(node["endpoint"], {"input": {"a": "one"}}, key)
    assert status == 422
    fields = [e["field"] for e in body["error"]["errors"]]
    assert body["error"]["field"] == "input.a" and fields == ["input.a", "input.b"]
    assert "expected float, got str" in body["error"]["message"]
    status, body, _ = post(node["endpoint"], {"input": {"a": 1, "b": 2, "c": 3}}, key)
    assert status == 422 and body["error"]["field"] == "input.c"
    status, body, _ = post(node["endpoint"], [1, 2], key)
    assert status == 422 and body["error"]["field"] == "input"


def test_17_mb_request_is_refused_before_its_body_is_read(adder, service):
    node, key = adder
    url = urllib.parse.urlsplit(node["endpoint"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (f"POST {url.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {17 * MB}\r\n\r\n")
        sock.sendall(head.encode() + b'{"input": {"a": ')  # and not one byte more
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    status, body, _ = post(node["endpoint"], b"x" * (17 * MB), key)  # sent whole: the same
    assert status == 413


def test_15_mb_request_is_accepted(service):
    node, key = service.create_node(
        "sizer", checkpoint_body("sizer", "size = len(text)", "text:str", "size:int", text="x"))
    try:
        status, body, _ = post(node["endpoint"], {"input": {"text": "y" * (15 * MB)}}, key)
        assert (status, body) == (200, {"output": {"size": 15 * MB}})
    finally:
        service.client.delete_node("sizer")


def test_17_mb_response_is_a_clear_502(service):
    node, key = service.create_node(
        "big", checkpoint_body("big", "blob = 'z' * (n * 1024 * 1024)", "n:int", "blob", n=0))
    try:
        status, body, _ = post(node["endpoint"], {"input": {"n": 17}}, key)
        assert status == 502 and body["error"]["code"] == "response_too_large"
        status, body, _ = post(node["endpoint"], {"input": {"n": 1}}, key)  # still serving
        assert status == 200 and len(body["output"]["blob"]) == MB
    finally:
        service.client.delete_node("big")


def test_cell_error_names_the_cell_line_and_instance_survives(service):
    node, key = service.create_node(
        "divider", checkpoint_body("divider", "offset = 1\nratio = a / b + offset",
                                   "a:float,b:float", "ratio", a=1.0, b=1.0))
    try:
        status, body, _ = post(node["endpoint"], {"input": {"a": 1, "b": 0}}, key)
        assert status == 500
        assert body["error_name"] == "ZeroDivisionError"
        assert body["error_message"] == "float division by zero"
        assert 'File "<cell divider>", line 2, in <module>' in "\n".join(body["traceback"])
        status, body, _ = post(node["endpoint"], {"input": {"a": 3, "b": 2}}, key)
        assert (status, body) == (200, {"output": {"ratio": 2.5}})
    finally:
        service.client.delete_node("divider")


def test_no_healthy_instance_is_503_with_retry_after(service):
    node, key = service.create_node("idle", checkpoint_body("idle", "y = x", "x:int", "y", x=1))
    service.client.suspend_node("idle", True)
    wait_for(lambda: service.client.node("idle")["instances"] == [], timeout=20,
             message="the suspended node to stop its instance")
    try:
        status, body, headers = post(node["endpoint"], {"input": {"x": 1}}, key)
        assert status == 503 and headers["Retry-After"] == "1"
        assert body["error"]["code"] == "unavailable"
    finally:
        service.client.delete_node("idle")


def test_slow_cell_times_out_with_504_and_abandoned_requests_do_not_run(service):
    # the test service runs with a 3 s request timeout
    node, key = service.create_node(
        "sleeper", checkpoint_body("sleeper", "import time\nruns.append(s)\ntime.sleep(s)\n"
                                   "done = len(runs)", "s:float", "done", state={"runs": []},
                                   s=0.0))
    try:
        queued = threading.Thread(target=lambda: answers.append(
            post(node["endpoint"], {"input": {"s": 0.1}}, key)))
        answers: list = []
        started = time.monotonic()
        threading.Timer(0.5, queued.start).start()  # waits behind the slow run
        status, body, _ = post(node["endpoint"], {"input": {"s": 5.0}}, key)
        assert status == 504 and body["error"]["code"] == "timeout"
        assert time.monotonic() - started < 4.5
        # health checks are answered while the cell runs: the instance stays in balancing
        assert service.client.node("sleeper")["status"] == "Healthy"
        queued.join(10)
        assert answers[0][0] == 504

        def answer_when_free():
            status, body, _ = post(node["endpoint"], {"input": {"s": 0.0}}, key)
            return body if status == 200 else None

        # the pin's run, the slow one, this one: the abandoned request never ran
        assert wait_for(answer_when_free, timeout=10, message="the instance to be free") == \
            {"output": {"done": 3}}
    finally:
        service.client.delete_node("sleeper")


def test_instances_do_not_see_the_service_credentials(service):
    node, key = service.create_node(
        "snoop", checkpoint_body("snoop", "import os\nfound = sorted(k for k in os.environ if "
                                 "k.startswith(('JUPYTER_DEPLOY_', 'JPY_')) or k == 'JUPYTER_TOKEN')",
                                 "", "found"))
    try:
        status, body, _ = post(node["endpoint"], {"input": {}}, key)
        assert (status, body) == (200, {"output": {"found": ["JUPYTER_DEPLOY_INSTANCE"]}})
    finally:
        service.client.delete_node("snoop")


def test_gateway_health(service):
    with urllib.request.urlopen(service.gateway_url + "/healthz", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def refuses(port: int) -> bool:
    """Nothing listens on the port any more (every thread of the process is gone)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_killed_instance_costs_no_request(service):
    """A request routed to an instance that just died goes to another one instead."""
    node, key = service.create_node(
        "sturdy", checkpoint_body("sturdy", "y = x + 1", "x:int", "y", x=0), min=2)
    try:
        victim = node["instances"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: refuses(victim["port"]), timeout=5, message="the instance to die")
        answers = [post(node["endpoint"], {"input": {"x": i}}, key) for i in range(20)]
        assert [(status, body) for status, body, _ in answers] == \
            [(200, {"output": {"y": i + 1}}) for i in range(20)]
        wait_for(lambda: service.client.node("sturdy")["status"] == "Healthy" and all(
            i["status"] == "Healthy" and i["id"] != victim["id"]
            for i in service.client.node("sturdy")["instances"]), timeout=30,
            message="the node to be whole again")
    finally:
        service.client.delete_node("sturdy")
