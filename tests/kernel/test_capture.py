"""Which state a cell needs, and how a checkpoint records it."""

from __future__ import annotations

import threading

import pytest

from jupyter_deploy.kernel.capture import capture, free_names
from jupyter_deploy.models import InvalidInput
from jupyter_deploy.types import parse_fields


@pytest.mark.parametrize("source, expected", [
    ("total = (a + b) * scale", ["a", "b", "scale"]),
    ("scale = 2.0\ntotal = a * scale", ["a"]),
    ("x = x + 1", ["x"]),
    ("count += 1", ["count"]),
    ("import math\ny = math.sqrt(v)", ["v"]),
    ("for i in items:\n    acc = f(i)", ["items", "f"]),
    ("if ready:\n    x = 1\ny = x", ["ready", "x"]),
    ("for i in r:\n    last = i\nz = last", ["r", "last"]),
    ("try:\n    v = load()\nexcept OSError:\n    pass\nw = v", ["load", "OSError", "v"]),
    ("if ready:\n    x = 1\n    y = x", ["ready"]),
    ("def g(z):\n    return z * k\ny = g(w)", ["w", "k"]),
    ("squares = [n * n for n in values if n > limit]", ["values", "limit"]),
    ("class M(Base):\n    size = width\nm = M()", ["Base", "width"]),
    ("fn = lambda q: q + offset", ["offset"]),
    ("if (n := compute()) > 0:\n    r = n", ["compute"]),
    ("model: Model\ny = model.predict(x)", ["Model", "model", "x"]),  # `x: T` binds nothing
    ("y: np.ndarray = f(x)\nz = y", ["f", "x", "np"]),  # annotations are evaluated
])
def test_free_names(source, expected):
    assert free_names(source) == expected


def test_capture_keeps_only_what_the_cell_reads():
    namespace = {"scale": 2.0, "a": 1.0, "b": 2.0, "lock": threading.Lock()}  # unpicklable
    namespace["total"] = 6.0
    meta, _ = capture("adder", "total = (a + b) * scale", namespace,
                      parse_fields("a:float,b:float", "--inputs"), parse_fields("total", "--outputs"),
                      {"a": 1.0, "b": 2.0})
    assert meta["state"] == ["scale"]
    assert meta["example"] == {"input": {"a": 1.0, "b": 2.0}, "output": {"total": 6.0}}


def test_capture_records_distributions():
    import numpy as np

    namespace = {"np": np, "w": np.arange(3.0), "x": 1.0}
    namespace["y"] = float(namespace["w"].sum() * 1.0)
    meta, _ = capture("np", "y = float(np.sum(w) * x)", namespace,
                      parse_fields("x:float", "--inputs"), parse_fields("y:float", "--outputs"),
                      {"x": 1.0})
    assert meta["state"] == ["np", "w"]
    requirements = {r["distribution"]: r["version"] for r in meta["environment"]["requirements"]}
    assert requirements["numpy"] == np.__version__
    assert set(requirements) <= {"numpy", "cloudpickle"}  # cloudpickle rebuilds the module ref


def test_capture_errors_name_the_problem():
    with pytest.raises(InvalidInput, match="declared output `y` does not exist"):
        capture("c", "x = 1", {"x": 1}, [], parse_fields("y", "--outputs"), {})
    with pytest.raises(InvalidInput, match=r"`lock`: TypeError: cannot pickle '_thread.lock'"):
        capture("c", "y = lock.locked()", {"lock": threading.Lock(), "y": False}, [],
                parse_fields("y", "--outputs"), {})


# Untyped values take the kind their value has (issue 15, item 2) ----------------------------

def _pin(source: str, namespace: dict, inputs: str = "", outputs: str = "") -> dict:
    exec(source, namespace)
    example = {f["name"]: namespace[f["name"]] for f in parse_fields(inputs, "--inputs")}
    meta, _ = capture("c", source, namespace, parse_fields(inputs, "--inputs"),
                      parse_fields(outputs, "--outputs"), example)
    return meta


def test_an_untyped_array_output_takes_its_dtype_and_trailing_shape():
    import numpy as np

    class Model:
        def predict(self, x):
            return x.sum(axis=1)

    meta = _pin("y = model.predict(x)",
                {"model": Model(), "x": np.ones((2, 4), dtype=np.float32)},
                "x:ndarray[float32,(-1,4)]", "y")
    assert meta["outputs"] == [{"name": "y", "type": "ndarray[float32,(-1,)]"}]
    assert meta["example"]["output"] == {"y": [4.0, 4.0]}


def test_untyped_frames_scalars_and_inputs_take_their_kinds():
    import numpy as np
    import pandas as pd

    meta = _pin("frame = pd.DataFrame({'a': grid[:, 0], 'label': ['p', 'q']})\n"
                "top = np.float32(grid.max())\ncount = np.int64(2)\nflag = np.bool_(True)",
                {"pd": pd, "np": np, "grid": np.arange(6.0).reshape(2, 3)},
                "grid", "frame,top,count,flag")
    assert meta["inputs"] == [{"name": "grid", "type": "ndarray[float64,(-1,3)]"}]
    assert meta["outputs"] == [
        {"name": "frame", "type": "DataFrame[a:float64,label:str]"},
        {"name": "top", "type": "float"}, {"name": "count", "type": "int"},
        {"name": "flag", "type": "bool"}]
    assert meta["example"]["output"] == {
        "frame": [{"a": 0.0, "label": "p"}, {"a": 3.0, "label": "q"}],
        "top": 5.0, "count": 2, "flag": True}


def test_plain_untyped_values_stay_any_and_numbers_inside_them_become_json():
    import numpy as np

    meta = _pin("scores = [np.float32(0.5), 2]\nname = 'x'\nlabels = np.array(['a', 'b'])\n"
                "typed = [np.int8(1)]", {"np": np}, "", "scores,name,labels,typed:list[any]")
    assert [f["type"] for f in meta["outputs"]] == ["any", "any", "any", "list[any]"]
    assert meta["example"]["output"] == {"scores": [0.5, 2], "name": "x", "labels": ["a", "b"],
                                         "typed": [1]}
    assert type(meta["example"]["output"]["scores"][0]) is float  # JSON, not numpy


@pytest.mark.parametrize("source, annotation", [
    ("y = {1, 2}", "--outputs y:"),  # a set has no JSON form
    ("y = np.array([1j])", "an ndarray of dtype complex128"),  # no JSON form
    ("y = object()", "--outputs y:"),
    ("y = [{1}]", "--outputs y:"),  # inside a list, too
])
def test_an_untyped_output_without_a_json_form_is_refused_by_name(source, annotation):
    import numpy as np

    with pytest.raises(InvalidInput) as raised:
        _pin(source, {"np": np}, "", "y")
    assert "output `y` holds " in raised.value.message and annotation in raised.value.message
    assert raised.value.field == "outputs"


# File inputs: plain bytes are an example too (issue 15, item 9) ------------------------------

def test_a_file_example_given_as_bytes_is_a_valid_request():
    from jupyter_deploy.types import input_errors

    inputs = parse_fields("doc:file", "--inputs")
    meta = _pin("size = len(doc)", {"doc": b"hello"}, "doc:file", "size")
    assert meta["example"]["input"] == {"doc": {"data": "aGVsbG8="}}
    assert input_errors(inputs, {"input": meta["example"]["input"]}) == []
