"""The Open Inference Protocol's REST form, with raw HTTP following the spec's JSON (and
Triton's binary tensor data extension): metadata, readiness, infer, outputs, errors, keys."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from ..conftest import wait_for
from .oip_nodes import BASE_INPUTS, SOURCE, grid_checkpoint, http, tensors

X = list(range(8))


@pytest.fixture(scope="module")
def grid(service):
    node, key = service.create_node("oipgrid", grid_checkpoint(), capture={"percent": 100})
    alias = service.client.set_alias("oipalias", {"nodes": {"oipgrid": 100}})
    yield service.gateway_url, key, alias["key"]
    service.client.delete_alias("oipalias")
    service.client.delete_node("oipgrid")


def infer(url: str, key: str | None, body: dict, model: str = "oipgrid", **headers: str):
    status, head, raw = http("POST", f"{url}/v2/models/{model}/infer", body, key, **headers)
    length = head.get("Inference-Header-Content-Length")
    return status, head, json.loads(raw[:int(length)] if length else raw)


def test_server_health_and_metadata(grid):
    url, _, _ = grid
    for path, answer in (("/v2/health/live", {"live": True}), ("/v2/health/ready",
                                                               {"ready": True})):
        status, _, body = http("GET", url + path)
        assert (status, json.loads(body)) == (200, answer)
    status, _, body = http("GET", url + "/v2")
    assert status == 200 and json.loads(body)["extensions"] == ["binary_tensor_data"]


def test_model_metadata_follows_the_declared_types(grid):
    url, _, _ = grid
    status, _, body = http("GET", url + "/v2/models/oipgrid")
    meta = json.loads(body)
    assert status == 200 and meta["name"] == "oipgrid" and meta["versions"] == ["1"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}
    assert inputs == {"x": ("FP32", [-1, 4]), "n": ("INT64", [1]), "flag": ("BOOL", [1]),
                      "word": ("BYTES", [1]), "tags": ("BYTES", [-1]), "ids": ("INT64", [-1]),
                      "df.a": ("INT64", [-1]), "df.b": ("BYTES", [-1]),
                      "config": ("UNMAPPED", [])}
    outputs = {t["name"]: t["datatype"] for t in meta["outputs"]}
    assert outputs["total"] == "FP64" and outputs["info"] == "UNMAPPED"
    assert outputs["frame.a"] == "INT64" and outputs["raw"] == "BYTES"
    status, _, body = http("GET", url + "/v2/models/oipgrid/versions/1")
    assert status == 200 and json.loads(body) == meta
    status, _, body = http("GET", url + "/v2/models/oipgrid/ready")
    assert (status, json.loads(body)) == (200, {"name": "oipgrid", "ready": True})


def test_infer_json(grid):
    url, key, _ = grid
    body = {"id": "call-1", "inputs": tensors(x=("FP32", [2, 4], X), **BASE_INPUTS,
                                              ids=("INT64", [3], [1, 2, 3]))}
    status, head, answer = infer(url, key, body)
    assert status == 200, answer
    assert answer["id"] == "call-1" and answer["model_name"] == "oipgrid"
    assert answer["model_version"] == "1" and head["x-request-id"]
    out = {o["name"]: o for o in answer["outputs"]}
    assert out["y"]["datatype"] == "FP32" and out["y"]["shape"] == [2, 4]
    assert out["y"]["data"] == [v * 2.0 for v in X]
    assert (out["total"]["datatype"], out["total"]["data"]) == ("FP64", [28.0])
    assert (out["count"]["datatype"], out["count"]["data"]) == ("INT64", [5])
    assert (out["ok"]["datatype"], out["ok"]["data"]) == ("BOOL", [False])
    assert (out["upper"]["datatype"], out["upper"]["data"]) == ("BYTES", ["HEY"])
    assert out["ids10"]["data"] == [10, 20, 30]
    assert "info" not in out  # a dict has no tensor form
    # bytes that are not text come in binary form even in a JSON answer
    assert out["raw"]["parameters"]["binary_data_size"] == 4 + 4


def test_infer_binary_data(grid):
    url, key, _ = grid
    x = np.arange(8, dtype="<f4").reshape(2, 4)
    word = b"bin"
    inputs = tensors(**{k: v for k, v in BASE_INPUTS.items() if k != "word"})
    inputs.append({"name": "x", "datatype": "FP32", "shape": [2, 4],
                   "parameters": {"binary_data_size": x.nbytes}})
    inputs.append({"name": "word", "datatype": "BYTES", "shape": [1],
                   "parameters": {"binary_data_size": 4 + len(word)}})
    head = json.dumps({"inputs": inputs, "outputs": [
        {"name": "y", "parameters": {"binary_data": True}}, {"name": "upper"}]}).encode()
    body = head + x.tobytes() + struct.pack("<I", len(word)) + word
    status, headers, raw = http("POST", f"{url}/v2/models/oipgrid/infer", body, key,
                                **{"Inference-Header-Content-Length": str(len(head))})
    assert status == 200, raw
    length = int(headers["Inference-Header-Content-Length"])
    answer = json.loads(raw[:length])
    assert [o["name"] for o in answer["outputs"]] == ["y", "upper"]  # as asked
    y, upper = answer["outputs"]
    assert y["parameters"]["binary_data_size"] == x.nbytes and "data" not in y
    got = np.frombuffer(raw[length:length + x.nbytes], dtype="<f4").reshape(y["shape"])
    assert (got == x * 2).all()
    assert upper["data"] == ["BIN"]


def test_binary_output_for_all(grid):
    url, key, _ = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], [1, 2, 3, 4]), **BASE_INPUTS),
            "outputs": [{"name": "count"}], "parameters": {"binary_data_output": True}}
    status, headers, raw = http("POST", f"{url}/v2/models/oipgrid/infer", body, key)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    length = int(headers["Inference-Header-Content-Length"])
    (count,) = json.loads(raw[:length])["outputs"]
    assert count["parameters"]["binary_data_size"] == 8
    assert struct.unpack("<q", raw[length:]) == (5,)


def test_dataframe_columns_are_tensors(grid):
    url, key, _ = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], [0, 0, 0, 0]), **BASE_INPUTS,
                              **{"df.a": ("INT64", [2], [7, 8]), "df.b": ("BYTES", [2],
                                                                         ["p", "q"])}),
            "outputs": [{"name": "frame.a"}, {"name": "frame.b"}]}
    status, _, answer = infer(url, key, body)
    assert status == 200, answer
    assert [(o["name"], o["data"]) for o in answer["outputs"]] == [
        ("frame.a", [7, 8]), ("frame.b", ["p", "q"])]


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"x": ("FP32", [2, 3], list(range(6)))}, 400, "expected shape [-1, 4]"),
    ({"x": ("FP64", [2, 4], X)}, 400, "expected datatype FP32"),
    ({"x": ("FP32", [2, 4], X[:5])}, 400, "holds 8 elements"),
    ({"x": None}, 400, "missing input 'x'"),
    ({"nope": ("FP32", [1], [1.0])}, 400, "unexpected input 'nope'"),
    ({"config": ("BYTES", [1], ["{}"])}, 400, "no tensor form"),
    ({"n": ("FP32", [1], [1.5])}, 400, "expected datatype INT64"),
    ({"word": ("BYTES", [1], ["boom"])}, 500, "ValueError: boom was asked for"),
])
def test_errors(grid, change, status, words):
    url, key, _ = grid
    values = {"x": ("FP32", [2, 4], X), **BASE_INPUTS, **change}
    body = {"inputs": tensors(**{k: v for k, v in values.items() if v is not None})}
    got, _, answer = infer(url, key, body)
    assert got == status and words in answer["error"], answer


def test_unknown_model_version_and_output(grid):
    url, key, _ = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], X[:4]), **BASE_INPUTS)}
    for model in ("nosuch", "oipgrid/versions/7"):
        status, _, answer = infer(url, key, body, model)
        assert status == 404 and "error" in answer
    status, _, answer = infer(url, key, {**body, "outputs": [{"name": "zzz"}]})
    assert status == 400 and "unknown output 'zzz'" in answer["error"]
    status, _, answer = infer(url, key, {**body, "outputs": [{"name": "info"}]})
    assert status == 400 and "no tensor form" in answer["error"]
    status, _, raw = http("POST", f"{url}/v2/models/oipgrid/infer", b"{not json", key)
    assert status == 400 and "not valid JSON" in json.loads(raw)["error"]
    status, _, raw = http("GET", f"{url}/v2/models/oipgrid/infer")
    assert status == 405


def test_alias_is_a_model(grid):
    url, _, alias_key = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], [1, 1, 1, 1]), **BASE_INPUTS),
            "outputs": [{"name": "total"}]}
    status, head, answer = infer(url, alias_key, body, "oipalias")
    assert status == 200 and answer["outputs"][0]["data"] == [4.0]
    assert answer["model_name"] == "oipalias" and head["x-node-id"] == "oipgrid"
    status, _, meta = http("GET", url + "/v2/models/oipalias")
    assert status == 200 and json.loads(meta)["inputs"][0]["name"] == "x"


def test_keys(grid):
    url, key, alias_key = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], X[:4]), **BASE_INPUTS)}
    status, head, answer = infer(url, None, body)
    assert status == 401 and head["WWW-Authenticate"] == "Bearer" and answer["error"]
    status, _, answer = infer(url, "jd_wrong", body)
    assert status == 403 and answer["error"]
    status, _, answer = infer(url, key, body, "oipalias")  # a node's key opens no alias
    assert status == 403


def test_metrics_and_request_ids(grid, service):
    url, key, _ = grid
    body = {"inputs": tensors(x=("FP32", [1, 4], X[:4]), **BASE_INPUTS)}
    status, head, _ = infer(url, key, body, **{"x-request-id": "oip-trace-1"})
    assert status == 200 and head["x-request-id"] == "oip-trace-1"
    _, _, page = http("GET", url + "/metrics")
    text = page.decode()
    assert ('node_http_codes_total{code="200",node_id="oipgrid",'
            'node_path="/v2/models/oipgrid/infer",protocol="oip"}') in text
    assert ('node_http_codes_total{code="401",node_id="oipgrid",'
            'node_path="/v2/models/oipgrid/infer",protocol="oip"}') in text


def test_examples_call_the_model(grid, service):
    url, key, _ = grid
    examples = service.client.request("GET", "/nodes/oipgrid/examples")
    assert examples["oip_infer"] == f"{url}/v2/models/oipgrid/infer"
    x = next(t for t in examples["oip_request"]["inputs"] if t["name"] == "x")
    assert (x["datatype"], x["shape"], x["data"]) == ("FP32", [2, 4], [1.0] * 8)
    env = {**os.environ, "NODE_KEY": key}
    done = subprocess.run(examples["oip_curl"], shell=True, capture_output=True, env=env,
                          timeout=30)
    length = done.stdout.index(b'"outputs"')  # the JSON part, then the raw output's bytes
    assert done.returncode == 0 and length and b'"model_name": "oipgrid"' in done.stdout
    done = subprocess.run([sys.executable, "-c", examples["tritonclient"]], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'total': array([8.])" in done.stdout


def test_requests_are_captured_as_native_calls(grid, service):
    url, key, _ = grid
    inputs = {**BASE_INPUTS, "word": ("BYTES", [1], ["captured"])}
    body = {"inputs": tensors(x=("FP32", [1, 4], [1, 2, 3, 4]), **inputs),
            "outputs": [{"name": "count"}]}
    assert infer(url, key, body)[0] == 200

    def row():
        rows = service.client.requests("oipgrid", 100)["requests"]
        return next((r for r in rows if r["input"].get("word") == "captured"), None)

    found = wait_for(row, timeout=10, message="the request to be captured")
    assert found["status"] == 200 and found["input"]["n"] == 3
    assert found["output"]["upper"] == "CAPTURED"


def test_limits(grid):
    url, key, _ = grid
    big = b"{" + b" " * (17 * 1024 * 1024) + b"}"
    status, _, _ = http("POST", f"{url}/v2/models/oipgrid/infer", big, key)
    assert status == 413
    # 5 MB of float32 in, their JSON out is past the 16 MB an answer may weigh
    x = (np.arange(5 << 18, dtype="<f4") / 7).reshape(-1, 4)
    head = json.dumps({"inputs": tensors(**BASE_INPUTS) + [
        {"name": "x", "datatype": "FP32", "shape": list(x.shape),
         "parameters": {"binary_data_size": x.nbytes}}], "outputs": [{"name": "y"}]}).encode()
    status, _, raw = http("POST", f"{url}/v2/models/oipgrid/infer", head + x.tobytes(), key,
                          **{"Inference-Header-Content-Length": str(len(head))})
    assert status == 502 and "more than the 16777216" in json.loads(raw)["error"]


def test_versions_follow_a_roll(service):
    _, key = service.create_node("oiproll", grid_checkpoint("oiproll"))
    try:
        url = service.gateway_url + "/v2/models/oiproll"
        assert json.loads(http("GET", url)[2])["versions"] == ["1"]
        service.client.add_checkpoint(grid_checkpoint("oiproll", SOURCE.replace(
            "y = x * 2", "y = x * 3")))
        service.client.update_node("oiproll", {"checkpoint": "oiproll@2"})
        wait_for(lambda: json.loads(http("GET", url)[2])["versions"] == ["2"], timeout=60,
                 message="the roll to version 2")
        body = {"inputs": tensors(x=("FP32", [1, 4], [1, 1, 1, 1]), **BASE_INPUTS),
                "outputs": [{"name": "y"}]}
        status, _, answer = infer(service.gateway_url, key, body, "oiproll/versions/2")
        assert status == 200 and answer["outputs"][0]["data"] == [3.0] * 4
        assert answer["model_version"] == "2"
        status, _, answer = infer(service.gateway_url, key, body, "oiproll/versions/1")
        assert status == 404 and "served: 2" in answer["error"]
        assert http("GET", url + "/versions/1/ready")[0] == 404
    finally:
        service.client.delete_node("oiproll")
