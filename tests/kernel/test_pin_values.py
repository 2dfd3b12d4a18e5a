"""Pinning cells whose values are arrays, frames or files, as a new user writes them, then
serving them (issue 15, items 2 and 9)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from jupyter_deploy.client.render import NODE_MIME

from ..conftest import wait_for
from .kernels import running_kernel
from .test_magics import Kernel


@pytest.fixture(scope="module")
def kernel(service, tmp_path_factory):
    with running_kernel(service, tmp_path_factory.mktemp("kernel")) as running:
        yield running


def create(kernel: Kernel, service: Any, line: str) -> dict[str, Any]:
    """`%deploy node create ...`, then the node's announcement once it is Healthy."""
    created = kernel.ok(f"%deploy node create {line}")
    announcement = next(d[NODE_MIME] for d in created.data if NODE_MIME in d)
    wait_for(lambda: service.client.node(announcement["node"])["status"] == "Healthy",
             timeout=60, message=f"node {announcement['node']} to be Healthy")
    return announcement


def execute(announcement: dict[str, Any], inputs: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        announcement["endpoint"], data=json.dumps({"input": inputs}).encode(), method="POST",
        headers={"Authorization": f"Bearer {announcement['key']}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_predict_cell_with_an_untyped_array_output_pins_and_serves(kernel, service):
    kernel.ok("import numpy as np\n"
              "class Model:\n"
              "    def __init__(self, weights):\n        self.weights = weights\n"
              "    def predict(self, x):\n        return x @ self.weights\n"
              "model = Model(np.array([1, 2, 3, 4], dtype=np.float32))\n"
              "x = np.ones((2, 4), dtype=np.float32)")
    pinned = kernel.ok("%%deploy pin proj --inputs x:ndarray[float32,(-1,4)] --outputs y\n"
                       "y = model.predict(x)")
    assert "outputs: y:ndarray[float32,(-1,)]" in pinned.stdout
    announcement = create(kernel, service, "proj --checkpoint proj --strict")
    try:
        status, body = execute(announcement, {"x": [[1, 0, 0, 0], [1, 1, 1, 1]]})
        assert (status, body) == (200, {"output": {"y": [1.0, 10.0]}})
        openapi = service.client.request("GET", "/checkpoints/proj")
        assert openapi["outputs"] == [{"name": "y", "type": "ndarray[float32,(-1,)]"}]
    finally:
        kernel.ok("%deploy node delete proj")


def test_an_untyped_output_with_no_json_form_is_refused_without_a_traceback(kernel):
    kernel.ok("v = 1")
    result = kernel.run("%%deploy pin seen --inputs v:int --outputs seen\nseen = {v, 2}")
    assert result.error.startswith("UsageError")
    assert "output `seen` holds a set" in result.error and "--outputs seen:" in result.error
    assert "Traceback" not in result.stderr


def test_a_file_input_takes_plain_bytes_as_its_example(kernel, service):
    kernel.ok("doc = b'hello'")
    pinned = kernel.ok("%%deploy pin upload --inputs doc:file --outputs size,name\n"
                       "size = len(doc)\nname = doc.filename or 'unnamed'")
    assert "inputs:  doc:file" in pinned.stdout
    checkpoint = service.client.request("GET", "/checkpoints/upload")
    assert checkpoint["example"]["input"] == {"doc": {"data": "aGVsbG8="}}
    announcement = create(kernel, service, "upload --checkpoint upload --strict")
    try:
        data = base64.b64encode(b"abc").decode()
        named = execute(announcement, {"doc": {"data": data, "filename": "a.txt"}})
        assert named == (200, {"output": {"size": 3, "name": "a.txt"}})
        assert execute(announcement, {"doc": data}) == (200, {"output": {"size": 3,
                                                                          "name": "unnamed"}})
    finally:
        kernel.ok("%deploy node delete upload")


def test_file_is_importable_from_the_package(kernel):
    result = kernel.ok("import jupyter_deploy\nf = jupyter_deploy.File(b'x', 'x.txt', 'text/plain')\n"
                       "print(f.filename, f.content_type, bytes(f))")
    assert result.stdout.strip() == "x.txt text/plain b'x'"
