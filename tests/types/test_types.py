"""The type grammar, its JSON checks and the JSON encodings of Python values."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from jupyter_deploy.models import InvalidInput
from jupyter_deploy.types import cell_annotations, input_errors, parse_fields, parse_type
from jupyter_deploy.types.values import File, Mismatch, decode, encode


@pytest.mark.parametrize("written, canonical", [
    ("float", "float"),
    ("List[int]", "list[int]"),
    ("typing.Dict[str, np.float32]", None),  # a dtype is not a value type
    ("dict[str, list[float]]", "dict[str,list[float]]"),
    ("int | None", "Optional[int]"),
    ("str?", "Optional[str]"),
    ("np.ndarray", "ndarray"),
    ("npt.NDArray[np.float32]", "ndarray[float32]"),
    ("ndarray[float32, (-1, 4)]", "ndarray[float32,(-1,4)]"),
    ("ndarray[(3,)]", "ndarray[any,(3,)]"),
    ("pd.DataFrame", "DataFrame"),
    ("DataFrame[a: int64, b: str]", "DataFrame[a:int64,b:str]"),
    ("bytes", "bytes"),
    ("dict[int, str]", None),
    ("int | str", None),
    ("ndarray[complex128]", None),
])
def test_types_are_read_as_written_and_spelled_one_way(written, canonical):
    if canonical is None:
        with pytest.raises(ValueError):
            parse_type(written)
    else:
        assert str(parse_type(written)) == canonical
        assert str(parse_type(canonical)) == canonical


def test_fields_split_outside_brackets_and_take_annotations():
    annotations = cell_annotations("x: np.ndarray\nframe: 'DataFrame[a:int64]' = f(x)\n"
                                   "odd: Whatever = 1\n")
    assert annotations == {"x": "ndarray", "frame": "DataFrame[a:int64]"}
    fields = parse_fields("x, w:ndarray[float32,(-1,4)], frame, odd", "--inputs", annotations)
    assert [f["type"] for f in fields] == ["ndarray", "ndarray[float32,(-1,4)]",
                                           "DataFrame[a:int64]", "any"]
    with pytest.raises(InvalidInput, match="the type of 'w', 'ndarray\\[float99\\]'"):
        parse_fields("w:ndarray[float99]", "--inputs")


def test_every_wrong_field_is_named_with_its_path():
    fields = parse_fields("x:ndarray[float32,(-1,4)],rows:DataFrame[a:int64,b:str],"
                          "n:Optional[int],tags:list[str],blob:bytes", "--inputs")
    good = {"x": [[1, 2, 3, 4.5]], "rows": [{"a": 1, "b": "x"}], "tags": ["a"], "blob": "aGk="}
    assert input_errors(fields, {"input": good}) == []
    assert input_errors(parse_fields("a", "--inputs"), {"input": {}}) == [
        {"field": "input.a", "message": "missing input"}]  # untyped is still required
    bad = {"x": [[1, 2, 3]], "rows": [{"a": 1.5, "b": "x", "c": 0}], "n": "3",
           "tags": ["a", 2], "blob": "hi!", "extra": 1}
    errors = {e["field"]: e["message"] for e in input_errors(fields, {"input": bad})}
    assert errors == {
        "input.x": "expected ndarray[float32,(-1,4)]: shape (1, 3) does not fit (-1, 4)",
        "input.rows[0].a": "expected int64, got float",
        "input.rows[0].c": "not a declared column",
        "input.n": "expected int, got str",
        "input.tags[1]": "expected str, got int",
        "input.blob": "expected bytes as base64, got other text",
        "input.extra": "not a declared input",
    }


def test_packed_arrays_are_checked_without_decoding():
    kind = parse_type("ndarray[float32,(-1,4)]")
    data = base64.b64encode(np.arange(8, dtype="<f4").tobytes()).decode()
    errors: list = []
    kind.errors({"dtype": "float32", "shape": [2, 4], "data": data}, "input.x", errors)
    kind.errors({"dtype": "float32", "shape": [3, 4], "data": data}, "input.x", errors)
    kind.errors({"dtype": "float64", "shape": [1, 4], "data": data}, "input.x", errors)
    assert [e["message"] for e in errors] == [
        "expected ndarray[float32,(-1,4)]: data holds 32 bytes; dtype and shape make 48",
        "expected ndarray[float32,(-1,4)]: dtype float64, not float32",
    ]


def test_values_round_trip_through_json():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    kind = parse_type("ndarray[float32,(-1,4)]")
    for arrays in ("list", "base64"):
        back = decode(kind, encode(kind, array, "output.x", arrays))
        assert back.dtype == np.float32 and (back == array).all()
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame_kind = parse_type("DataFrame[a:int64,b:str]")
    records = encode(frame_kind, frame, "output.f")
    assert records == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert decode(frame_kind, records).equals(frame)
    upload = decode(parse_type("file"), {"filename": "a.txt", "data": "aGk="})
    assert upload == b"hi" and isinstance(upload, File) and upload.filename == "a.txt"
    assert encode(parse_type("Optional[float]"), None, "output.y") is None
    assert encode(parse_type("float"), float("nan"), "output.y") is None
    assert encode(parse_type("list[bytes]"), [b"hi"], "output.y") == ["aGk="]


@pytest.mark.parametrize("kind, value, message", [
    ("ndarray[float32]", np.zeros(2), "expected ndarray[float32], got an array of dtype float64"),
    ("ndarray[any,(2,)]", np.zeros(3), "got an array of shape (3,)"),
    ("DataFrame[a:int64]", pd.DataFrame({"a": [1.5]}), "expected column dtype int64, got float64"),
    ("DataFrame[a:int64]", pd.DataFrame({"b": [1]}), "missing columns ['a']"),
    ("int", True, "expected int, got bool"),
    ("list[int]", [1, "2"], "expected int, got str"),
])
def test_outputs_of_the_wrong_type_say_why(kind, value, message):
    with pytest.raises(Mismatch, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        encode(parse_type(kind), value, "output.y")
