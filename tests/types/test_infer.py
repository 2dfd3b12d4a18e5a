"""The kind an untyped value takes at pin time, and example values as instances see them
(issue 15, items 2 and 9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_deploy.types import parse_type
from jupyter_deploy.types.infer import kind_of
from jupyter_deploy.types.values import File, as_instance_sees, encode


@pytest.mark.parametrize("value, kind", [
    (np.zeros((5, 4), dtype=np.float32), "ndarray[float32,(-1,4)]"),
    (np.arange(3), "ndarray[int64,(-1,)]"),
    (np.zeros((2, 3, 2), dtype=np.uint8), "ndarray[uint8,(-1,3,2)]"),
    (np.array(True), "bool"),  # 0-d: a scalar
    (np.array(["a"]), "any"),  # strings: sent as a list
    (np.float32(1.5), "float"), (np.int16(3), "int"), (np.bool_(False), "bool"),
    (pd.DataFrame({"a": [1.0], "b": ["x"], "c": [1]}), "DataFrame[a:float64,b:str,c:int64]"),
    (pd.DataFrame({"a": [1], "not an identifier": [2]}), "DataFrame"),
    (pd.DataFrame({0: [1]}), "DataFrame"),
    (pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])}), "DataFrame[when:any]"),
    (b"raw", "bytes"), (File(b"raw", "a.txt"), "file"),
    (1.5, "any"), ({"a": [1]}, "any"), ("text", "any"),
])
def test_kind_of(value, kind):
    assert kind_of(value) == kind
    assert str(parse_type(kind)) == kind  # the grammar reads it back as it is
    encode(parse_type(kind), value, "value")  # and the value fits it


def test_a_file_example_given_as_bytes_becomes_a_file_without_name_or_type():
    kind = parse_type("file")
    file = as_instance_sees(kind, b"hello")
    assert isinstance(file, File) and file == b"hello"
    assert (file.filename, file.content_type) == (None, None)
    assert as_instance_sees(parse_type("Optional[file]"), bytearray(b"x")) == File(b"x")
    named = File(b"x", "a.txt")
    assert as_instance_sees(kind, named) is named
    assert as_instance_sees(parse_type("bytes"), b"x").__class__ is bytes
    assert encode(kind, file, "doc") == {"data": "aGVsbG8="}  # no nulls a request refuses
    assert encode(kind, File(b"x", "a.txt"), "doc") == {"filename": "a.txt", "data": "eA=="}
