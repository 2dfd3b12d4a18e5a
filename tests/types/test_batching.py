"""Stacking requests' rows into one batch and splitting a batched cell's outputs back
(issue 18), and the pin's check that a cell declared batchable works row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_deploy.client.commands import _options
from jupyter_deploy.kernel.batch_check import check_batchable
from jupyter_deploy.kernel.magics import _parser, words
from jupyter_deploy.models import InvalidInput
from jupyter_deploy.types import parse_fields
from jupyter_deploy.types.batching import Unbatchable, rows, same, split, stack


def test_arrays_lists_and_frames_stack_and_split_back_by_rows():
    arrays = [np.arange(4.0).reshape(1, 4), np.arange(8.0).reshape(2, 4)]
    stacked = stack(arrays)
    assert stacked.shape == (3, 4)
    first, second = split(stacked, [1, 2])
    assert np.array_equal(first, arrays[0]) and np.array_equal(second, arrays[1])
    assert stack([[1, 2], [3]]) == [1, 2, 3] and split([1, 2, 3], [2, 1]) == [[1, 2], [3]]
    frames = [pd.DataFrame({"a": [1], "b": ["x"]}), pd.DataFrame({"a": [2, 3], "b": ["y", "z"]})]
    parts = split(stack(frames), [1, 2])
    assert parts[1].to_dict("records") == [{"a": 2, "b": "y"}, {"a": 3, "b": "z"}]
    assert list(parts[1].index) == [0, 1]  # each caller's frame starts at row 0, as unbatched
    assert split(stack([np.zeros((0, 4)), np.ones((1, 4))]), [0, 1])[0].shape == (0, 4)


def test_what_has_no_rows_or_not_the_batch_s_rows_is_unbatchable():
    with pytest.raises(Unbatchable, match="0-d"):
        rows(np.float64(1.0) * np.ones(()))
    with pytest.raises(Unbatchable, match="float"):
        rows(1.5)
    with pytest.raises(Unbatchable, match="2 rows for a batch of 3"):
        split(np.ones((2, 4)), [1, 2])


def test_same_allows_the_rounding_of_batched_kernels_only():
    a = np.float32([0.1, 0.2, 0.7])
    assert same(a, a * (1 + 1e-7)) and not same(a, a * 1.01)
    assert not same(a, a[:2]) and same([1, 2.0], [1, 2.0]) and not same([1], [2])
    assert same(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0 + 1e-9]}))
    assert not same(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}))


def _check(source: str, inputs: str, outputs: str, **example):
    namespace = {"np": np, "pd": pd, **example}
    exec(source, namespace)
    check_batchable(source, namespace, parse_fields(inputs, "--inputs"),
                    parse_fields(outputs, "--outputs"), example)


def test_a_row_wise_cell_passes_the_pin_check():
    w = np.eye(4, dtype="float32") * 2
    _check("y = x @ w", "x:ndarray[float32,(-1,4)]", "y:ndarray[float32,(-1,4)]",
           x=np.ones((1, 4), dtype="float32"), w=w)
    _check("out = frame.assign(c=frame.a * k)", "frame:DataFrame,k:float", "out:DataFrame",
           frame=pd.DataFrame({"a": [1.0, 2.0]}), k=3.0)
    _check("labels = [str(v) for v in values]", "values:list", "labels:list", values=[1, 2])


@pytest.mark.parametrize("source, inputs, outputs, field, words_", [
    ("y = x * len(x)", "x:ndarray[float64,(-1,2)]", "y:ndarray[float64,(-1,2)]", "outputs",
     "output `y` of the example twice"),
    ("y = x[:1]", "x:ndarray[float64,(-1,2)]", "y:ndarray[float64,(-1,2)]", "outputs",
     "does not split"),
    ("total = float(x.sum())", "x:ndarray[float64,(-1,2)]", "total:float", "outputs",
     "output `total` is float"),
    ("y = a + b", "a:float,b:float", "y:float", "inputs", "array, list or DataFrame input"),
    ("y = x if len(x) < 2 else None + 1", "x:ndarray[float64,(-1,2)]",
     "y:ndarray[float64,(-1,2)]", "batch", "cell raised TypeError"),
])
def test_a_cell_that_is_not_row_wise_is_refused_naming_why(source, inputs, outputs, field,
                                                          words_):
    with pytest.raises(InvalidInput) as refused:
        _check(source, inputs, outputs, x=np.ones((1, 2)), a=1.0, b=2.0)
    assert refused.value.field == field and words_ in refused.value.message, \
        refused.value.message


def test_the_magic_and_the_cli_take_the_batch_flags():
    args = _parser().parse_args(words("pin scorer --inputs x --outputs y --batch"))
    assert args.batch
    args = _parser().parse_args(words("node create n --checkpoint c --batch"))
    assert _options(args)["batch"] == {}
    args = _parser().parse_args(words("node create n --checkpoint c --batch-size 8 "
                                      "--batch-wait-ms 2"))
    assert _options(args)["batch"] == {"max_size": 8, "max_wait_ms": 2}
    args = _parser().parse_args(words("node update n --no-batch"))
    assert _options(args)["batch"] is None
    assert "batch" not in _options(_parser().parse_args(words("node update n --min 2")))
