"""Typed inputs and outputs over the gateway's REST API, its OpenAPI documents and docs page,
and the ready-to-paste examples of the control API."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import urllib.request

import jsonschema
import numpy as np
import pytest

from jupyter_deploy.types.values import File

from ..conftest import checkpoint_body
from .test_gateway import post

SOURCE = """\
sums = x.sum(axis=1) * scale
frame = pd.DataFrame({"row": np.arange(len(x)), "total": sums.astype("float64")})
peak: float = float(sums.max()) + (offset or 0.0)
"""
X = np.arange(8, dtype=np.float32).reshape(2, 4)


@pytest.fixture(scope="module")
def model(service):
    import pandas as pd

    body = checkpoint_body(
        "arrays", SOURCE, "x:ndarray[float32,(-1,4)],scale:float,offset:Optional[float]",
        "frame:DataFrame[row:int64,total:float64],peak", state={"np": np, "pd": pd},
        x=X, scale=2.0, offset=0.0)
    node, key = service.create_node("arrays", body)
    yield node, key, body
    service.client.delete_node("arrays")


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def test_arrays_in_and_a_dataframe_out_answer_as_the_notebook_did(model):
    node, key, body = model
    packed = {"dtype": "float32", "shape": [2, 4],
              "data": base64.b64encode(X.astype("<f4").tobytes()).decode()}
    expected = {"output": body["example"]["output"]}
    assert expected["output"]["frame"] == [{"row": 0, "total": 12.0}, {"row": 1, "total": 44.0}]
    for x in (X.tolist(), packed):  # nested lists, or the raw bytes in base64
        status, answer, _ = post(node["endpoint"], {"input": {"x": x, "scale": 2.0}}, key)
        assert (status, answer) == (200, expected)  # `offset` may be left out: it is None
    status, answer, _ = post(node["endpoint"], {"input": {"x": X.tolist(), "scale": 2,
                                                          "offset": 1}}, key)
    assert answer["output"]["peak"] == 45.0


def test_wrong_types_name_every_field(model):
    node, key, _ = model
    status, answer, _ = post(node["endpoint"], {"input": {"x": [[1, 2, 3]], "scale": "2",
                                                          "offset": None}}, key)
    assert status == 422
    assert {e["field"]: e["message"] for e in answer["error"]["errors"]} == {
        "input.x": "expected ndarray[float32,(-1,4)]: shape (1, 3) does not fit (-1, 4)",
        "input.scale": "expected float, got str",
    }


def test_openapi_document_describes_the_node_with_the_notebooks_values(model, service):
    node, key, body = model
    status, data, headers = get(f"{service.gateway_url}/v1/nodes/arrays/openapi.json")
    assert status == 200
    document = json.loads(data)
    assert document["openapi"] == "3.1.0"
    operation = document["paths"]["/v1/nodes/arrays:execute"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    assert content["example"] == {"input": body["example"]["input"]}
    answer = operation["responses"]["200"]["content"]["application/json"]
    assert answer["example"] == {"output": body["example"]["output"]}
    # the examples, and both array encodings, fit the schemas the document gives
    jsonschema.validate(content["example"], content["schema"])
    jsonschema.validate(answer["example"], answer["schema"])
    packed = {"x": {"dtype": "float32", "shape": [1, 4], "data": "AAAAAAAAAAAAAAAAAAAAAA=="},
              "scale": 1.0}
    jsonschema.validate({"input": packed}, content["schema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"input": {"x": [[1, 2, 3]], "scale": 1.0}}, content["schema"])
    assert document["servers"] == [{"url": service.gateway_url}]
    assert operation["security"] == [{"bearer": []}]
    assert get(f"{service.gateway_url}/v1/nodes/nothing/openapi.json")[0] == 404


def test_docs_page_is_served_with_its_assets(model, service):
    status, page, headers = get(f"{service.gateway_url}/v1/nodes/arrays/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'"/v1/nodes/arrays/openapi.json"' in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/v1/docs/static/{asset}".encode() in page
        status, data, headers = get(f"{service.gateway_url}/v1/docs/static/{asset}")
        assert status == 200 and len(data) > 10_000
    assert get(f"{service.gateway_url}/v1/docs/static/..%2Fcore.py")[0] == 404


def test_an_output_of_the_wrong_type_is_a_500_naming_it(service):
    node, key = service.create_node("liar", checkpoint_body(
        "liar", "y = x * 2 if x < 10 else 'many'", "x:int", "y:int", x=1))
    try:
        assert post(node["endpoint"], {"input": {"x": 2}}, key)[:2] == (200, {"output": {"y": 4}})
        status, answer, _ = post(node["endpoint"], {"input": {"x": 20}}, key)
        assert status == 500
        assert answer["error"]["field"] == "output.y"
        assert "expected int, got str" in answer["error"]["message"]
    finally:
        service.client.delete_node("liar")


def test_bytes_and_files_arrive_as_bytes(service):
    node, key = service.create_node("sizes", checkpoint_body(
        "sizes", "sizes = [len(blob), len(upload)]\nname = upload.filename",
        "blob:bytes,upload:file", "sizes:list[int],name:Optional[str]",
        blob=b"ab", upload=File(b"xyz", "example.txt")))
    try:
        upload = {"filename": "notes.txt", "data": base64.b64encode(b"hello").decode()}
        status, answer, _ = post(node["endpoint"], {"input": {"blob": "AAE=", "upload": upload}},
                                 key)
        assert (status, answer) == (200, {"output": {"sizes": [2, 5], "name": "notes.txt"}})
    finally:
        service.client.delete_node("sizes")


def test_examples_are_ready_to_paste(model, service):
    node, key, body = model
    examples = service.client.request("GET", "/nodes/arrays/examples")
    assert examples["input"] == body["example"]["input"]
    assert examples["docs"] == f"{service.gateway_url}/v1/nodes/arrays/docs"
    result = subprocess.run(examples["curl"], shell=True, capture_output=True, text=True,
                            env={**os.environ, "NODE_KEY": key}, timeout=30)
    assert json.loads(result.stdout) == {"output": body["example"]["output"]}
    reply = grpcurl(examples["grpcurl"].replace("$NODE_KEY", key))
    assert reply["peak"] == body["example"]["output"]["peak"]
    assert [row["total"] for row in reply["frame"]] == [12.0, 44.0]


def grpcurl(command: str) -> dict:
    """What grpcurl does with this command line, done with grpcio and server reflection
    (grpcurl itself is not packaged for Debian)."""
    import grpc
    from google.protobuf import descriptor_pool, json_format, message_factory
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    args = shlex.split(command)
    assert args[:2] == ["grpcurl", "-plaintext"]
    metadata, data, rest = [], None, args[2:]
    while rest[0] in ("-H", "-d"):
        option, value, rest = rest[0], rest[1], rest[2:]
        if option == "-H":
            name, _, text = value.partition(":")
            metadata.append((name.strip(), text.strip()))
        else:
            data = value
    address, method = rest
    service, _, name = method.rpartition("/")
    with grpc.insecure_channel(address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        found = pool.FindServiceByName(service).FindMethodByName(name)
        request_class = message_factory.GetMessageClass(found.input_type)
        reply_class = message_factory.GetMessageClass(found.output_type)
        call = channel.unary_unary(f"/{service}/{name}",
                                   request_serializer=request_class.SerializeToString,
                                   response_deserializer=reply_class.FromString)
        reply = call(json_format.Parse(data, request_class()), metadata=metadata, timeout=30)
    return json_format.MessageToDict(reply, preserving_proto_field_name=True)
