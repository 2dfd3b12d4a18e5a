"""A node's typed messages for every kind of declared type: the .proto compiles with protoc,
the generated classes read what the gateway writes, and values come back as they went."""

from __future__ import annotations

import base64
import importlib
import importlib.resources
import struct
import sys

import pytest

from jupyter_deploy.gateway.grpc.proto import build_schema, node_of, package_of
from jupyter_deploy.gateway.grpc.transcode import Unsendable, fill_message, message_json

TABLE = "DataFrame[a:float64,b:str,c:int32,d:uint8,e:bool,f:any]"
FIELDS = [
    ("x", "ndarray[float32,(-1,4)]"), ("n", "int"), ("o", "Optional[float]"),
    ("nested", "list[list[int]]"), ("series", "dict[str,list[float]]"),
    ("maybe", "list[Optional[str]]"), ("some", "Optional[list[int]]"), ("upload", "file"),
    ("anything", "any"), ("items", "list"), ("options", "dict"), ("loose", "DataFrame"),
    ("counts", "dict[str,int]"), ("blob", "bytes"), ("frames", "list[DataFrame[a:int64]]"),
    ("table", TABLE),
    ("array", "Optional[ndarray]"), ("deep", "dict[str,Optional[dict[str,int]]]"),
]
VALUE = {
    "x": {"dtype": "float32", "shape": [1, 4],
          "data": base64.b64encode(struct.pack("<4f", 1, 2, 3, 4.5)).decode()},
    "n": -3, "o": None, "nested": [[1, 2], [], [3]], "series": {"k": [1.5, 2.0]},
    "maybe": ["a", None, "b"], "some": [1, 2],
    "upload": {"filename": "a.txt", "content_type": "text/plain", "data": "aGk="},
    "anything": {"q": [1, "z", None, True, 2.5]}, "items": [1, {"a": 2}], "options": {"k": "v"},
    "loose": [{"a": 1}, {"b": "x"}], "counts": {"a": 1}, "blob": "aGk=",
    "frames": [[{"a": 1}, {"a": None}]],
    "table": [{"a": 1.5, "b": "x", "c": 3, "d": 255, "e": True, "f": [1]},
              {"a": None, "b": None, "c": None, "d": None, "e": None, "f": None}],
    "array": None, "deep": {"p": None, "q": {"z": 1}},
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The schema of node `every-kind`, and the module protoc makes of its .proto."""
    from grpc_tools import protoc

    schema = build_schema("every-kind", "kinds@1", [{"name": n, "type": t} for n, t in FIELDS],
                          [{"name": "table", "type": TABLE}])
    folder = tmp_path_factory.mktemp("proto")
    (folder / "every_kind.proto").write_text(schema.text())
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    assert protoc.main(["protoc", f"-I{folder}", f"-I{include}", f"--python_out={folder}",
                        str(folder / "every_kind.proto")]) == 0
    sys.path.insert(0, str(folder))
    try:
        return schema, importlib.import_module("every_kind_pb2")
    finally:
        sys.path.remove(str(folder))


def test_every_kind_round_trips_through_the_generated_classes(generated):
    schema, module = generated
    data = fill_message(schema.input_class(), schema.inputs, VALUE, "input").SerializeToString()
    parsed = module.Input.FromString(data)  # what a client generated from the .proto reads
    assert list(parsed.x.shape) == [1, 4] and parsed.upload.filename == "a.txt"
    assert [list(item.value) for item in parsed.nested] == [[1, 2], [], [3]]
    assert not parsed.HasField("o") and parsed.table[1].HasField("f") is False
    again = message_json(schema.input_class.FromString(parsed.SerializeToString()),
                         schema.inputs)
    assert again == VALUE


def test_proto_text_reads_as_declared(generated):
    schema, _ = generated
    text = schema.text()
    assert "package jupyter_deploy.nodes.every_kind;" in text
    assert "service Node {\n  rpc Execute(Input) returns (Output);\n}" in text
    assert "  NDArray x = 1;  // ndarray[float32,(-1,4)]" in text
    assert "  optional double o = 3;  // Optional[float]" in text
    assert "  map<string, int64> counts = 13;  // dict[str,int]" in text
    assert "    optional uint64 d = 4;  // uint8" in text


def test_unset_inputs_are_missing_or_zero():
    schema = build_schema("zeros", "z@1", [{"name": "n", "type": "int"},
                                           {"name": "x", "type": "ndarray"},
                                           {"name": "o", "type": "Optional[int]"}], [])
    assert message_json(schema.input_class(), schema.inputs) == {"n": 0, "o": None}


def test_outputs_that_do_not_fit_name_their_field():
    schema = build_schema("big", "b@1", [], [{"name": "n", "type": "int"},
                                             {"name": "y", "type": "ndarray"}])
    with pytest.raises(Unsendable) as info:
        fill_message(schema.output_class(), schema.outputs, {"n": 2 ** 70}, "output")
    assert info.value.field == "output.n"
    message = fill_message(schema.output_class(), schema.outputs,
                           {"y": [[1.0, None], [3.0, 4.0]]}, "output")  # nested lists: packed
    assert (message.y.dtype, list(message.y.shape)) == ("float64", [2, 2])


@pytest.mark.parametrize("node", ["predictor", "my-node", "2d-model", "a-2-b"])
def test_package_names_map_back_to_nodes(node):
    assert node_of(package_of(node)) == node
    assert package_of(node).isidentifier()
