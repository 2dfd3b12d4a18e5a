"""The gateway's gRPC port with real grpcio clients: typed services generated from the node's
.proto, the generic Struct service, reflection, health, limits and status codes."""

from __future__ import annotations

import base64
import importlib
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pool, message_factory, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from ..conftest import checkpoint_body
from .test_gateway import MB, post

GRID = """import time
import numpy as np
import pandas as pd

if delay:
    time.sleep(delay)
if len(x) == 0:
    raise ValueError("the grid has no rows")
table = pd.DataFrame({"row": np.arange(len(x), dtype="int64"),
                      "total": x.sum(axis=1).astype("float64"),
                      "label": [f"r{i}" for i in range(len(x))]})
scaled = x * 2
"""
GRID_INPUTS = "x:ndarray[float32,(-1,4)],delay:Optional[float]"
GRID_OUTPUTS = "table:DataFrame[row:int64,total:float64,label:str],scaled:ndarray[float32,(-1,4)]"
SERVICE = "jupyter_deploy.nodes.grid.Node"
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 32 * MB),
                   ("grpc.max_send_message_length", 32 * MB)]


@pytest.fixture(scope="module")
def grid(service):
    example = np.arange(8, dtype="float32").reshape(2, 4)
    node, key = service.create_node(
        "grid", checkpoint_body("grid", GRID, GRID_INPUTS, GRID_OUTPUTS, x=example, delay=None))
    yield node, key
    service.client.delete_node("grid")


@pytest.fixture(scope="module")
def channel(service):
    with grpc.insecure_channel(service.grpc_address, options=CHANNEL_OPTIONS) as chan:
        yield chan


@pytest.fixture(scope="module")
def stubs(grid, service, tmp_path_factory):
    """The client a user generates: the node's .proto downloaded (no key), compiled, imported."""
    from grpc_tools import protoc

    folder = tmp_path_factory.mktemp("generated")
    with urllib.request.urlopen(service.gateway_url + "/v1/nodes/grid.proto", timeout=10) as got:
        assert got.headers["Content-Type"].startswith("text/plain")
        (folder / "grid.proto").write_bytes(got.read())
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    assert protoc.main(["protoc", f"-I{folder}", f"-I{include}", f"--python_out={folder}",
                        f"--grpc_python_out={folder}", str(folder / "grid.proto")]) == 0
    sys.path.insert(0, str(folder))
    try:
        messages = importlib.import_module("grid_pb2")
        services = importlib.import_module("grid_pb2_grpc")
    finally:
        sys.path.remove(str(folder))
    return messages, services


def packed(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(array.dtype), "shape": list(array.shape),
            "data": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}


def auth(key: str, **more: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}"), *more.items()]


def typed_call(stubs, channel, key: str | None, x: np.ndarray, **fields: Any):
    messages, services = stubs
    request = messages.Input(x=messages.NDArray(dtype=str(x.dtype), shape=list(x.shape),
                                                data=x.tobytes()), **fields)
    stub = services.NodeStub(channel)
    return stub.Execute(request, metadata=auth(key) if key else None, timeout=30)


def failed(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_rest_and_grpc_give_the_same_answer(grid, service, channel, stubs):
    node, key = grid
    x = np.array([[1, 2, 3, 4.5], [0, -1, 0.25, 8]], dtype="float32")
    status, rest, _ = post(node["endpoint"], {"input": {"x": x.tolist()}}, key)
    assert status == 200
    reply = typed_call(stubs, channel, key, x)
    rows = [{"row": r.row, "total": r.total, "label": r.label} for r in reply.table]
    assert rows == rest["output"]["table"] == [
        {"row": 0, "total": 10.5, "label": "r0"}, {"row": 1, "total": 7.25, "label": "r1"}]
    assert (reply.scaled.dtype, list(reply.scaled.shape)) == ("float32", [2, 4])
    scaled = np.frombuffer(reply.scaled.data, dtype="<f4").reshape(reply.scaled.shape)
    assert np.array_equal(scaled, np.array(rest["output"]["scaled"], dtype="float32"))
    assert np.array_equal(scaled, x * 2)
    # the REST body can carry the array packed too: the same answer again
    status, packed_rest, _ = post(node["endpoint"], {"input": {"x": packed(x)}}, key)
    assert (status, packed_rest) == (200, rest)


def test_generic_struct_execute_with_x_node_id(grid, service, channel):
    node, key = grid
    execute = channel.unary_unary("/jupyter_deploy.Gateway/Execute",
                                  request_serializer=struct_pb2.Struct.SerializeToString,
                                  response_deserializer=struct_pb2.Struct.FromString)
    request = struct_pb2.Struct()
    request.update({"x": [[1, 1, 1, 1]]})
    reply = execute(request, metadata=auth(key, **{"x-node-id": "grid"}), timeout=30)
    _, rest, _ = post(node["endpoint"], {"input": {"x": [[1, 1, 1, 1]]}}, key)
    assert json.loads(json.dumps(_plain(reply))) == rest["output"]
    error = failed(lambda: execute(request, metadata=auth(key), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-node-id" in error.details()


def _plain(struct: struct_pb2.Struct) -> Any:
    """A Struct as JSON, whole numbers as ints (as the gateway reads them)."""
    from google.protobuf.json_format import MessageToDict

    def ints(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, list):
            return [ints(v) for v in value]
        if isinstance(value, dict):
            return {k: ints(v) for k, v in value.items()}
        return value

    return ints(MessageToDict(struct))


def test_reflection_lists_node_services_as_nodes_come_and_go(grid, service, channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    assert SERVICE in database.get_services()
    assert "jupyter_deploy.Gateway" in database.get_services()
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName(SERVICE).FindMethodByName("Execute")
    assert method.input_type.fields_by_name["x"].message_type.full_name == \
        "jupyter_deploy.nodes.grid.NDArray"
    assert [f.name for f in method.output_type.fields] == ["table", "scaled"]
    # what grpcurl does: build the request from the reflected descriptors alone
    request_class, reply_class = reflected(channel, SERVICE)
    x = np.ones((1, 4), dtype="float32")
    request = request_class()
    request.x.dtype, request.x.data = "float32", x.tobytes()
    request.x.shape.extend([1, 4])
    call = channel.unary_unary(f"/{SERVICE}/Execute",
                               request_serializer=request_class.SerializeToString,
                               response_deserializer=reply_class.FromString)
    reply = call(request, metadata=auth(grid[1]), timeout=30)
    assert [(r.row, r.total, r.label) for r in reply.table] == [(0, 4.0, "r0")]

    later = "late-comer"
    service.create_node(later, checkpoint_body(later, "y = n + 1", "n:int", "y:int", n=1))
    try:
        assert "jupyter_deploy.nodes.late_comer.Node" in \
            ProtoReflectionDescriptorDatabase(channel).get_services()
        late_pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        late = late_pool.FindMethodByName("jupyter_deploy.nodes.late_comer.Node.Execute")
        assert late.input_type.fields_by_name["n"].type == late.input_type.fields[0].TYPE_INT64
    finally:
        service.client.delete_node(later)
    assert "jupyter_deploy.nodes.late_comer.Node" not in \
        ProtoReflectionDescriptorDatabase(channel).get_services()


def test_health_follows_the_node(grid, service, channel):
    health = health_pb2_grpc.HealthStub(channel)

    def status(name: str) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status

    assert status("") == health_pb2.HealthCheckResponse.SERVING
    assert status(SERVICE) == health_pb2.HealthCheckResponse.SERVING
    service.create_node("resting", checkpoint_body("resting", "y = n", "n:int", "y:int", n=1))
    try:
        name = "jupyter_deploy.nodes.resting.Node"
        assert status(name) == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        service.client.suspend_node("resting", True)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert status(name) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        service.client.delete_node("resting")
    error = failed(lambda: status("jupyter_deploy.nodes.resting.Node"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_wrong_input_is_invalid_argument_naming_the_field(grid, channel, stubs):
    _, key = grid
    error = failed(lambda: typed_call(stubs, channel, key, np.ones((2, 4), dtype="float64")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("input.x: expected ndarray[float32,(-1,4)]: dtype float64")
    error = failed(lambda: typed_call(stubs, channel, key, np.ones((2, 3), dtype="float32")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input.x" in error.details() and "shape (2, 3)" in error.details()
    messages, services = stubs
    error = failed(lambda: services.NodeStub(channel).Execute(messages.Input(), metadata=auth(key),
                                                              timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "input.x: missing ndarray[float32,(-1,4)] input"


def test_keys_and_unknown_nodes(grid, service, channel, stubs):
    _, key = grid
    x = np.ones((1, 4), dtype="float32")
    error = failed(lambda: typed_call(stubs, channel, None, x))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = failed(lambda: typed_call(stubs, channel, "jd_wrong", x))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    nobody = channel.unary_unary("/jupyter_deploy.nodes.nobody.Node/Execute")
    error = failed(lambda: nobody(b"", metadata=auth(key), timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "nobody" in error.details()
    messages, services = stubs
    error = failed(lambda: services.NodeStub(channel).Execute(
        messages.Input(), metadata=auth(key, **{"x-node-id": "nobody"}), timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(service.gateway_url + "/v1/nodes/nobody.proto", timeout=10)
    assert info.value.code == 404


def test_public_alias_by_metadata_needs_no_key(grid, service, channel, stubs):
    service.client.set_alias("grid-public", {"nodes": {"grid": 100}, "public": True})
    try:
        messages, services = stubs
        x = np.ones((1, 4), dtype="float32")
        request = messages.Input(x=messages.NDArray(dtype="float32", shape=[1, 4],
                                                    data=x.tobytes()))
        reply, call = services.NodeStub(channel).Execute.with_call(
            request, metadata=[("x-node-alias", "grid-public")], timeout=30)
        assert [r.total for r in reply.table] == [4.0]
        assert dict(call.trailing_metadata())["x-node-id"] == "grid"
    finally:
        service.client.delete_alias("grid-public")


def test_cell_error_is_unknown_with_its_traceback(grid, channel, stubs):
    _, key = grid
    error = failed(lambda: typed_call(stubs, channel, key, np.zeros((0, 4), dtype="float32")))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert error.details() == "ValueError: the grid has no rows"
    trailing = dict(error.trailing_metadata())
    assert trailing["x-error-name"] == "ValueError"
    assert 'File "<cell grid>", line 8, in <module>' in trailing["traceback-bin"].decode()


def test_client_deadline_bounds_the_call(grid, channel, stubs):
    _, key = grid
    messages, services = stubs
    x = np.ones((1, 4), dtype="float32")
    request = messages.Input(x=messages.NDArray(dtype="float32", shape=[1, 4], data=x.tobytes()),
                             delay=1.0)
    error = failed(lambda: services.NodeStub(channel).Execute(request, metadata=auth(key),
                                                              timeout=0.3))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.fixture(scope="module")
def sizer(service):
    node, key = service.create_node(
        "sizer-grpc", checkpoint_body("sizer-grpc", "size = int(x.size)", "x:ndarray[uint8]",
                                      "size:int", x=np.zeros(1, dtype="uint8")))
    yield node, key
    service.client.delete_node("sizer-grpc")


def reflected(channel: grpc.Channel, service: str):
    """The message classes of a service, from the server's reflection alone (as grpcurl)."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName(service).FindMethodByName("Execute")
    return (message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type))


def test_message_limits(sizer, channel):
    _, key = sizer
    service = "jupyter_deploy.nodes.sizer_grpc.Node"
    request_class, reply_class = reflected(channel, service)
    call = channel.unary_unary(f"/{service}/Execute",
                               request_serializer=request_class.SerializeToString,
                               response_deserializer=reply_class.FromString)

    def request(size: int):
        message = request_class()
        message.x.dtype, message.x.data = "uint8", b"\x07" * size
        message.x.shape.append(size)
        return message

    assert call(request(15 * MB), metadata=auth(key), timeout=60).size == 15 * MB
    error = failed(lambda: call(request(17 * MB), metadata=auth(key), timeout=60))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_rest_accepts_15_mb_json_with_a_base64_array(sizer):
    node, key = sizer
    array = np.full(11 * MB, 7, dtype="uint8")
    body = json.dumps({"input": {"x": packed(array)}}).encode()
    assert 14 * MB < len(body) < 16 * MB
    status, answer, _ = post(node["endpoint"], body, key)
    assert (status, answer) == (200, {"output": {"size": 11 * MB}})
