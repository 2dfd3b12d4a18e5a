"""The Open Inference Protocol's type mapping and tensor conversions, without a gateway."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from jupyter_deploy.gateway.oip import examples
from jupyter_deploy.gateway.oip.convert import native_inputs, tensors_of
from jupyter_deploy.gateway.oip.tensors import (
    Tensor,
    TensorError,
    pack,
    pack_bytes,
    specs_of,
    unpack,
    unpack_bytes,
)


def fields(text: str) -> list[dict[str, str]]:
    return [dict(zip(("name", "type"), f.split(":", 1), strict=True)) for f in text.split(";")]


def test_every_declared_type_has_its_tensor_or_says_it_has_none():
    specs = specs_of(fields("a:ndarray[float16,(-1,3)];b:ndarray[uint8];c:int;d:float;e:bool;"
                            "f:str;g:bytes;h:list[int];i:Optional[list[str]];"
                            "j:DataFrame[p:float32,q:str];k:dict;l:any;m:list;n:list[dict]"))
    table = {s.name: (s.datatype, s.metadata()["shape"], s.required) for s in specs}
    assert table == {
        "a": ("FP16", [-1, 3], True), "b": ("UINT8", [-1], True), "c": ("INT64", [1], True),
        "d": ("FP64", [1], True), "e": ("BOOL", [1], True), "f": ("BYTES", [1], True),
        "g": ("BYTES", [1], True), "h": ("INT64", [-1], True), "i": ("BYTES", [-1], False),
        "j.p": ("FP32", [-1], True), "j.q": ("BYTES", [-1], True),
        "k": ("UNMAPPED", [], True), "l": ("UNMAPPED", [], True), "m": ("UNMAPPED", [], True),
        "n": ("UNMAPPED", [], True)}
    assert specs_of(fields("z:ndarray"))[0].datatype == "ANY"


@pytest.mark.parametrize("datatype", ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8",
                                      "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64"])
def test_raw_bytes_are_numpy_little_endian(datatype):
    dtype = {"BOOL": "?", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}.get(datatype) or (
        ("<u" if datatype[0] == "U" else "<i") + str(int(datatype.lstrip("UINT")) // 8))
    values = [True, False, True] if datatype == "BOOL" else [1, 2, 3]
    raw = pack(datatype, values)
    assert raw == np.array(values, dtype=dtype).tobytes()
    assert unpack(datatype, raw) == values


def test_bad_data_is_a_clear_error():
    with pytest.raises(TensorError, match="INT8"):
        pack("INT8", [300])
    with pytest.raises(TensorError, match="true or false"):
        pack("BOOL", [1])
    with pytest.raises(TensorError, match="whole number"):
        unpack("FP32", b"123")
    with pytest.raises(TensorError, match="cut short"):
        unpack_bytes(struct.pack("<I", 5) + b"ab")
    assert unpack_bytes(pack_bytes([b"", b"xyz"])) == [b"", b"xyz"]


def test_inputs_become_the_native_body_and_outputs_tensors():
    specs = specs_of(fields("x:ndarray[float32,(-1,2)];w:str;t:list[float];"
                            "df:DataFrame[a:int64,b:str]"))
    x = np.array([[1, 2], [3, 4]], dtype="<f4")
    native = native_inputs(specs, [
        Tensor("x", "FP32", [2, 2], raw=x.tobytes()),
        Tensor("w", "BYTES", [1], raw=pack_bytes([b"hi"])),
        Tensor("t", "FP32", [2], values=[0.5, 1.5]),
        Tensor("df.a", "INT64", [2], raw=pack("INT64", [1, 2])),
        Tensor("df.b", "BYTES", [2], values=["u", "v"]),
    ])
    assert native["x"]["dtype"] == "float32" and native["x"]["shape"] == [2, 2]
    assert native["w"] == "hi" and native["t"] == [0.5, 1.5]
    assert native["df"] == [{"a": 1, "b": "u"}, {"a": 2, "b": "v"}]
    out = tensors_of(specs, {**native, "t": [None, 2.0]})
    assert [(t.name, t.datatype, t.shape) for t in out] == [
        ("x", "FP32", [2, 2]), ("w", "BYTES", [1]), ("t", "FP64", [2]),
        ("df.a", "INT64", [2]), ("df.b", "BYTES", [2])]
    assert out[0].as_raw() == x.tobytes() and out[1].as_list() == [b"hi"]
    assert np.isnan(out[2].as_list()[0])


def test_columns_of_one_frame_have_one_length():
    specs = specs_of(fields("df:DataFrame[a:int64,b:str]"))
    with pytest.raises(TensorError, match="different lengths"):
        native_inputs(specs, [Tensor("df.a", "INT64", [2], values=[1, 2]),
                              Tensor("df.b", "BYTES", [1], values=["u"])])
    with pytest.raises(TensorError, match="missing input 'df.b'"):
        native_inputs(specs, [Tensor("df.a", "INT64", [1], values=[1])])


def test_example_input_as_an_oip_request():
    request = examples.request(fields("x:ndarray[float32,(-1,2)];n:int;cfg:Optional[dict]"),
                               {"x": [[1.0, 2.0]], "n": 3, "cfg": None})
    assert request == {"inputs": [
        {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]},
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [3]}]}
    assert examples.request(fields("cfg:dict"), {"cfg": {}}) is None
