"""The %deploy magics in a real IPython kernel, against a standalone service."""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

from jupyter_deploy.client.render import NODE_MIME

from ..client.test_wait import MODEL


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # "Name: message" of an error the cell ended with
    value: str = ""  # text/plain of the cell's result
    data: list[dict[str, Any]] = field(default_factory=list)  # display_data bundles


class Kernel:
    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, code: str, timeout: float = 120) -> Result:
        result = Result()

        def collect(message: dict[str, Any]) -> None:
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                setattr(result, content["name"], getattr(result, content["name"]) + content["text"])
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "execute_result":
                result.value = content["data"].get("text/plain", "")
            elif kind == "display_data":
                result.data.append(content["data"])

        reply = self.client.execute_interactive(code, output_hook=collect, timeout=timeout)
        if reply["content"]["status"] == "error" and not result.error:
            # IPython shows a UsageError on stderr, with no error message of its own
            result.error = f"{reply['content']['ename']}: {result.stderr.strip()}"
        return result

    def ok(self, code: str) -> Result:
        result = self.run(code)
        assert not result.error, f"{result.error}\n{result.stderr}"
        return result


@pytest.fixture(scope="module")
def kernel(service, tmp_path_factory):
    manager, client = start_new_kernel(kernel_name="python3", env=service.kernel_env,
                                       cwd=str(tmp_path_factory.mktemp("kernel")))
    try:
        running = Kernel(client)
        running.ok("%load_ext jupyter_deploy")
        yield running
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_pin_create_call_status_delete(kernel, service):
    kernel.ok("import math, threading\nscale = 2.0\nunused = threading.Lock()\na, b = 1.0, 2.0")
    pinned = kernel.ok("%%deploy pin adder --inputs a:float,b:float --outputs total\n"
                       "total = (a + b) * scale")
    assert re.match(r"Pinned checkpoint adder@\d+ \(id [0-9a-f]{16}\)", pinned.stdout)
    assert "state:   scale" in pinned.stdout  # the lock it does not read is left out
    created = kernel.ok("%deploy node create adder-node --checkpoint adder --min 2")
    announcement = next(d[NODE_MIME] for d in created.data if NODE_MIME in d)
    assert announcement["status"] == "Healthy"
    assert "key:      jd_" in created.data[0]["text/plain"]
    assert kernel.ok("%deploy call adder-node a=1 b=2").value == "{'total': 6.0}"
    status = kernel.ok("%deploy node status adder-node").stdout
    assert status.startswith("adder-node: Healthy (instances 2..2")
    assert status.count("  Healthy  ") == 2  # one row per instance

    request = urllib.request.Request(
        announcement["endpoint"], data=json.dumps({"input": {"a": 1, "b": 2}}).encode(),
        headers={"Authorization": f"Bearer {announcement['key']}"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"output": {"total": 6.0}}

    listing = kernel.ok("%deploy node list").stdout
    assert "adder-node" in listing and "Healthy" in listing
    logs = kernel.ok("%deploy node logs adder-node").stdout
    assert logs.count("restored adder") == 2
    assert "Node adder-node deleted." in kernel.ok("%deploy node delete adder-node").stdout
    assert "No nodes." in kernel.ok("%deploy node list").stdout


def test_pin_refuses_a_missing_output(kernel):
    result = kernel.run("%%deploy pin nothing --inputs x:int --outputs y,z\nx = 1\ny = x")
    assert "UsageError" in result.error
    assert "input `x` has no value" in result.error
    kernel.ok("x = 1")
    result = kernel.run("%%deploy pin nothing --inputs x:int --outputs y,z\ny = x")
    assert "declared output `z` does not exist" in result.error


def test_pin_names_unpicklable_state(kernel):
    kernel.ok("import threading\nlock = threading.Lock()\n"
              "def guarded(v):\n    with lock:\n        return v * 2\n"
              "v = 1")
    result = kernel.run("%%deploy pin guarded --inputs v:int --outputs w\nw = guarded(v)")
    assert "cannot be pinned" in result.error
    assert "`guarded`: it reaches `lock`" in result.error
    assert "_thread.lock" in result.error
    result = kernel.run("%%deploy pin direct --inputs v:int --outputs w\nwith lock:\n    w = v")
    assert "`lock`: TypeError: cannot pickle '_thread.lock' object" in result.error


def test_pin_checks_types_and_plain_python(kernel):
    kernel.ok("n = 'three'")
    result = kernel.run("%%deploy pin typed --inputs n:int --outputs m\nm = n")
    assert ("the example value of input `n` does not fit its declared type: expected int, "
            "got str") in result.error
    kernel.ok("n = 3")
    result = kernel.run("%%deploy pin typed --inputs n:int --outputs m:str\nm = n")
    assert ("the example output `m` does not fit its declared type: expected str, got int"
            in result.error)
    result = kernel.run("%%deploy pin shell --inputs n:int --outputs m\n!echo hi\nm = n")
    assert "must be plain Python" in result.error
    result = kernel.run("%%deploy pin raising --inputs n:int --outputs m\nm = n / 0")
    assert result.error == "ZeroDivisionError: division by zero"
    assert "nothing was pinned" in result.stderr


def test_pin_reads_types_from_the_cells_annotations(kernel, service):
    kernel.ok("import numpy as np\nimport pandas as pd\nx = np.ones((2, 4), dtype=np.float32)\n"
              "limit = None")
    kernel.ok("%%deploy pin annotated --inputs x,limit --outputs frame,n:int\n"
              "x: 'ndarray[float32,(-1,4)]'\nlimit: float | None\n"
              "frame: pd.DataFrame = pd.DataFrame({'s': x.sum(axis=1)})\nn = len(frame)")
    checkpoint = service.client.request("GET", "/checkpoints/annotated")
    assert checkpoint["inputs"] == [{"name": "x", "type": "ndarray[float32,(-1,4)]"},
                                    {"name": "limit", "type": "Optional[float]"}]
    assert checkpoint["outputs"] == [{"name": "frame", "type": "DataFrame"},
                                     {"name": "n", "type": "int"}]
    assert checkpoint["example"]["output"] == {"frame": [{"s": 4.0}, {"s": 4.0}], "n": 2}


def test_call_errors_show_the_cell_error(kernel, service):
    kernel.ok("d = 1.0")
    kernel.ok("%%deploy pin inverse --inputs d:float --outputs inv\ninv = 1 / d")
    kernel.ok("%deploy node create inverse --checkpoint inverse")
    try:
        result = kernel.run("%deploy call inverse d=0")
        assert result.error.startswith("UsageError")
        assert result.stderr.strip().endswith("UsageError: ZeroDivisionError: float division by zero")
        assert 'File "<cell inverse>", line 1, in <module>\n    inv = 1 / d' in result.stderr
        result = kernel.run("%deploy call inverse d='x'")
        assert "input.d: expected float, got str" in result.error
        result = kernel.run("%deploy call nobody d=1")
        assert "no node 'nobody'" in result.error
    finally:
        kernel.ok("%deploy node delete inverse")


def test_magic_usage_errors(kernel):
    assert "UsageError" in kernel.run("%deploy pin x").error
    assert "UsageError" in kernel.run("%deploy node create x").error  # --checkpoint missing
    assert "UsageError" in kernel.run("%deploy nonsense").error


def test_alias_and_suspend_magics(kernel, service):
    kernel.ok("q = 1")
    kernel.ok("%%deploy pin echo --inputs q:int --outputs r\nr = q")
    kernel.ok("%deploy node create echo-a --checkpoint echo")
    kernel.ok("%deploy node create echo-b --checkpoint echo")
    try:
        shown = kernel.ok("%deploy alias set echo echo-a=70 echo-b=30 --meta team=ml").stdout
        assert "echo-a 70% (Healthy) | echo-b 30% (Healthy)" in shown and "key: jd_" in shown
        listed = kernel.ok("%deploy alias list").stdout
        assert listed.startswith("ALIAS") and "/v1/aliases/echo:execute" in listed
        assert "weights sum to 90" in kernel.run("%deploy alias set echo echo-a=90").error
        kernel.ok("%deploy alias set echo echo-b=100 --public")
        assert "suspended" in kernel.ok("%deploy node suspend echo-a").stdout
        assert "suspended" not in kernel.ok("%deploy node resume echo-a").stdout
        assert "Alias echo deleted." in kernel.ok("%deploy alias delete echo").stdout
    finally:
        kernel.ok("%deploy node delete echo-a")
        kernel.ok("%deploy node delete echo-b")


def test_logs_of_one_request_and_metrics_at_pin_time(kernel, service):
    kernel.ok("name = 'ada'")
    pinned = kernel.ok("%%deploy pin greet --inputs name:str --outputs greeting\n"
                       "from jupyter_deploy import metrics\n"
                       "metrics.counter('greetings', 'Greetings made').inc()\n"
                       "print('greeting', name)\n"
                       "greeting = 'hello ' + name")
    assert "greeting ada" in pinned.stdout  # the pin ran the cell, metrics and all
    created = kernel.ok("%deploy node create greeter --checkpoint greet")
    announcement = next(d[NODE_MIME] for d in created.data if NODE_MIME in d)
    try:
        for person, request_id in (("bob", "greet-bob"), ("eve", "greet-eve")):
            request = urllib.request.Request(
                announcement["endpoint"], data=json.dumps({"input": {"name": person}}).encode(),
                method="POST", headers={"Authorization": f"Bearer {announcement['key']}",
                                        "x-request-id": request_id})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.headers["x-request-id"] == request_id
        logs = kernel.ok("%deploy node logs greeter --request-id greet-eve --tail 2000").stdout
        assert "[greet-eve] greeting eve" in logs and "bob" not in logs
    finally:
        kernel.ok("%deploy node delete greeter")


def test_create_raises_when_the_node_is_not_healthy(kernel, tmp_path):
    """Issue 15, item 4: a node that fails at start, or a wait that runs out, is an error in
    the notebook, with the reason; the node's key is still shown, since the node exists."""
    weights = tmp_path / "weights.txt"
    weights.write_text("3")
    kernel.ok(MODEL + f"model = Model({str(weights)!r})\nx = 1")
    kernel.ok("%%deploy pin scaled --inputs x:int --outputs y\ny = x * model.scale")
    weights.unlink()  # gone when an instance restores the model
    try:
        created = kernel.run("%deploy node create scaled-node --checkpoint scaled")
        assert created.error.startswith("NodeNotHealthy: node scaled-node is Unhealthy")
        assert "the instance exited (code 3)" in created.error
        assert "FileNotFoundError" in created.error
        assert any("key:      jd_" in d.get("text/plain", "") for d in created.data)
        waited = kernel.run("%deploy node create waiting-node --checkpoint scaled --timeout 0")
        assert waited.error.startswith("NodeNotHealthy: node waiting-node is Created after 0 s")
    finally:
        kernel.run("%deploy node delete scaled-node")
        kernel.run("%deploy node delete waiting-node")


def test_update_waits_for_the_roll(kernel, service):
    kernel.ok("w = 1")
    kernel.ok("%%deploy pin twice --inputs w:int --outputs z\nz = 2 * w")
    kernel.ok("%deploy node create twice-node --checkpoint twice")
    try:
        (old,) = service.client.node("twice-node")["instances"]
        shown = kernel.ok("%deploy node update twice-node --env MODE=fast").stdout
        (new,) = service.client.node("twice-node")["instances"]
        assert new["id"] != old["id"]
        assert shown.startswith("twice-node: Healthy") and new["id"] in shown
        assert old["id"] not in shown
    finally:
        kernel.ok("%deploy node delete twice-node")
