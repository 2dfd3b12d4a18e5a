"""Stacking the inputs of many requests into one batch along the first axis, and splitting a
batched cell's outputs back into each request's rows (issue 18).

Arrays, lists and DataFrames stack; every other kind is shared by the batch (requests batch
together only when those inputs are equal). numpy and pandas are imported only when a value
of theirs is met.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from .kinds import Type

STACKED = ("ndarray", "list", "dataframe")
RTOL = 1e-5  # batched BLAS kernels may round differently from a single row's


class Unbatchable(Exception):
    """A value cannot be stacked or split along its first axis."""


def stacked(kind: Type) -> bool:
    """Whether inputs and outputs of this kind are stacked along their first axis."""
    return kind.kind in STACKED


def rows(value: Any) -> int:
    """The length of a value's first axis."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        if not shape:
            raise Unbatchable("an array without a first axis (0-d) has no rows")
        return int(shape[0])
    if isinstance(value, (list, tuple)):
        return len(value)
    raise Unbatchable(f"a {type(value).__name__} has no rows to stack or split")


def stack(values: list[Any]) -> Any:
    """One value of every request's rows, in order (values of one kind, as decoded)."""
    first = values[0]
    if len(values) == 1:
        return first
    if _is_frame(first):
        import pandas as pd

        return pd.concat(values, ignore_index=True)
    if _is_array(first):
        import numpy as np

        return np.concatenate(values, axis=0)
    out: list[Any] = []
    for value in values:
        out.extend(value)
    return out


def split(value: Any, counts: list[int]) -> list[Any]:
    """The value cut into consecutive parts of `counts` rows (Unbatchable when it has not
    exactly their sum)."""
    total = rows(value)
    if total != sum(counts):
        raise Unbatchable(f"it has {total} rows for a batch of {sum(counts)}")
    if len(counts) == 1:
        return [value]
    parts, start = [], 0
    frame = _is_frame(value)
    for count in counts:
        part = value.iloc[start:start + count] if frame else value[start:start + count]
        parts.append(part.reset_index(drop=True) if frame else part)
        start += count
    return parts


def same(a: Any, b: Any) -> bool:
    """Whether two values are equal, floats within RTOL (what the pin's check accepts)."""
    if _is_frame(a) or _is_frame(b):
        if not (_is_frame(a) and _is_frame(b)) or list(a.columns) != list(b.columns) \
                or len(a) != len(b):
            return False
        return all(same(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
    if _is_array(a) or _is_array(b):
        import numpy as np

        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            return bool(np.allclose(x, y, rtol=RTOL, atol=1e-8, equal_nan=True))
        return bool(np.array_equal(x, y))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-8) or (a != a and b != b)
        except TypeError:
            return False
    return bool(a == b)


def _is_array(value: Any) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _is_frame(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
