"""The Open Inference Protocol with the clients of the serving world: tritonclient's HTTP
and gRPC clients (from PyPI) call nodes and aliases as Triton models."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from .oip_nodes import grid_checkpoint

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

X = np.arange(8, dtype="float32").reshape(2, 4)


@pytest.fixture(scope="module")
def grid(service):
    _, key = service.create_node("oiptriton", grid_checkpoint("oiptriton"))
    alias = service.client.set_alias("oiptriton-alias", {"nodes": {"oiptriton": 100}})
    yield key, alias["key"]
    service.client.delete_alias("oiptriton-alias")
    service.client.delete_node("oiptriton")


@pytest.fixture(scope="module", params=["http", "grpc"])
def triton(request, service, grid):
    """(the client module, a client of the gateway) for each protocol."""
    if request.param == "http":
        client = httpclient.InferenceServerClient(service.gateway_url.split("//", 1)[1])
        yield httpclient, client
    else:
        client = grpcclient.InferenceServerClient(service.grpc_address)
        yield grpcclient, client
    client.close()


def inputs(module, binary: bool = True, word: bytes = b"hey", **change):
    """The grid's inputs as the client builds them."""
    arrays = {"x": X, "n": np.array([3], dtype="int64"), "flag": np.array([True]),
              "word": np.array([word], dtype=object),
              "tags": np.array([b"a", b"b"], dtype=object), **change}
    out = []
    for name, value in arrays.items():
        if value is None:
            continue
        datatype = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "bool": "BOOL",
                    "object": "BYTES", "int32": "INT32"}[str(value.dtype)]
        tensor = module.InferInput(name, list(value.shape), datatype)
        if module is httpclient:
            tensor.set_data_from_numpy(value, binary_data=binary)
        else:
            tensor.set_data_from_numpy(value)
        out.append(tensor)
    return out


def _bytes(value):
    return value if isinstance(value, bytes) else value.encode()


def bearer(key):
    return {"authorization": f"Bearer {key}"}


def test_metadata_and_readiness(triton):
    module, client = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("oiptriton") and client.is_model_ready("oiptriton", "1")
    meta = client.get_model_metadata("oiptriton", as_json=True) if module is grpcclient \
        else client.get_model_metadata("oiptriton")
    assert meta["name"] == "oiptriton" and meta["versions"] == ["1"]
    x = next(t for t in meta["inputs"] if t["name"] == "x")
    assert x["datatype"] == "FP32" and [int(d) for d in x["shape"]] == [-1, 4]
    server = client.get_server_metadata(as_json=True) if module is grpcclient \
        else client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_arrays_int_bool_bytes(triton, grid, binary):
    module, client = triton
    key, _ = grid
    ids = np.array([1, 2, 3], dtype="int64")
    outputs = [module.InferRequestedOutput(name, binary_data=binary)
               if module is httpclient else module.InferRequestedOutput(name)
               for name in ("y", "count", "ok", "upper", "ids10", "raw")]
    result = client.infer("oiptriton", inputs(module, binary, ids=ids), outputs=outputs,
                          headers=bearer(key), request_id="tri-1")
    assert (result.as_numpy("y") == X * 2).all() and result.as_numpy("y").dtype == np.float32
    assert result.as_numpy("count").tolist() == [5]
    assert result.as_numpy("ok").tolist() == [False]
    # in JSON form, tritonclient gives BYTES as str
    assert [_bytes(v) for v in result.as_numpy("upper").tolist()] == [b"HEY"]
    assert result.as_numpy("ids10").tolist() == [10, 20, 30]
    assert result.as_numpy("raw").tolist() == [b"hey\xff"]
    answer = result.get_response(as_json=True) if module is grpcclient \
        else result.get_response()
    assert answer["id"] == "tri-1" and answer["model_version"] == "1"


def test_requested_outputs(triton, grid):
    module, client = triton
    key, _ = grid
    result = client.infer("oiptriton", inputs(module),
                          outputs=[module.InferRequestedOutput("total")], headers=bearer(key))
    assert result.as_numpy("total").tolist() == [28.0]
    assert result.as_numpy("y") is None


@pytest.mark.parametrize(("change", "words"), [
    ({"x": np.zeros((2, 3), dtype="float32")}, "expected shape [-1, 4]"),
    ({"x": X.astype("float64")}, "expected datatype FP32"),
    ({"x": None}, "missing input 'x'"),
])
def test_errors(triton, grid, change, words):
    module, client = triton
    key, _ = grid
    with pytest.raises(InferenceServerException) as failed:
        client.infer("oiptriton", inputs(module, **change), headers=bearer(key))
    assert words in failed.value.message()
    assert failed.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")


def test_unknown_model(triton, grid):
    module, client = triton
    key, _ = grid
    with pytest.raises(InferenceServerException) as failed:
        client.infer("nosuch", inputs(module), headers=bearer(key))
    assert failed.value.status() in ("404", "StatusCode.NOT_FOUND")
    with pytest.raises(InferenceServerException):
        client.infer("oiptriton", inputs(module), model_version="9", headers=bearer(key))


def test_the_cell_raising(triton, grid):
    module, client = triton
    key, _ = grid
    with pytest.raises(InferenceServerException) as failed:
        client.infer("oiptriton", inputs(module, word=b"boom"), headers=bearer(key))
    assert "ValueError: boom was asked for" in failed.value.message()


def test_alias_as_a_model(triton, grid):
    module, client = triton
    _, alias_key = grid
    result = client.infer("oiptriton-alias", inputs(module),
                          outputs=[module.InferRequestedOutput("total")],
                          headers=bearer(alias_key))
    assert result.as_numpy("total").tolist() == [28.0]
    assert client.is_model_ready("oiptriton-alias")


def test_missing_or_wrong_key(triton, grid):
    module, client = triton
    for headers, code in ((None, ("401", "StatusCode.UNAUTHENTICATED")),
                          (bearer("jd_wrong"), ("403", "StatusCode.PERMISSION_DENIED"))):
        with pytest.raises(InferenceServerException) as failed:
            client.infer("oiptriton", inputs(module), headers=headers)
        assert failed.value.status() in code


def test_metrics_say_the_protocol(triton, grid, service):
    module, client = triton
    key, _ = grid
    client.infer("oiptriton", inputs(module), headers=bearer(key))
    with urllib.request.urlopen(service.gateway_url + "/metrics", timeout=10) as page:
        text = page.read().decode()
    if module is grpcclient:
        line = ('node_grpc_codes_total{code="OK",node_id="oiptriton",'
                'node_path="/inference.GRPCInferenceService/ModelInfer",protocol="oip"}')
    else:
        line = ('node_http_codes_total{code="200",node_id="oiptriton",'
                'node_path="/v2/models/oiptriton/infer",protocol="oip"}')
    assert line in text


def test_grpc_typed_contents(service, grid):
    """Inputs in InferTensorContents rather than raw_input_contents (tritonclient's own
    messages, on a plain channel)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    key, _ = grid
    request = service_pb2.ModelInferRequest(model_name="oiptriton", id="typed")
    for name, datatype, shape, field, values in (
            ("x", "FP32", [1, 4], "fp32_contents", [1, 2, 3, 4]),
            ("n", "INT64", [1], "int64_contents", [2]), ("flag", "BOOL", [1], "bool_contents",
                                                         [False]),
            ("word", "BYTES", [1], "bytes_contents", [b"typed"]),
            ("tags", "BYTES", [1], "bytes_contents", [b"t"])):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        getattr(tensor.contents, field).extend(values)
    request.outputs.add(name="count")
    request.outputs.add(name="upper")
    with grpc.insecure_channel(service.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(request, metadata=(("authorization", f"Bearer {key}"),))
    assert answer.id == "typed" and [o.name for o in answer.outputs] == ["count", "upper"]
    assert np.frombuffer(answer.raw_output_contents[0], dtype="<i8").tolist() == [3]
    assert answer.raw_output_contents[1] == b"\x05\x00\x00\x00TYPED"
