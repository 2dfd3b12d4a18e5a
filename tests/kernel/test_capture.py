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
