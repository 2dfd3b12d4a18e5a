"""The declared type an untyped input or output takes from its value at pin time.

A numpy array keeps its dtype and its shape after the first axis, a DataFrame its columns, a
numpy scalar is a number: what the caller gets then matches what the notebook had. Values
that are already JSON (int, str, lists, dicts...) stay `any`, and so does what has no kind of
its own here (an array of strings is sent as a list); the pin checks that those have a JSON
form at all.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .grammar import parse_type
from .kinds import DTYPES
from .values import File, Mismatch, encode

COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a column name the grammar can spell
SCALAR_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float"}


def kind_of(value: Any) -> str:
    """The canonical type for `value`; `any` when it has no kind more precise than JSON."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _array_kind(value)
    if numpy is not None and isinstance(value, numpy.generic):
        return SCALAR_KINDS.get(value.dtype.kind, "any")
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _frame_kind(value)
    if isinstance(value, File):
        return "file"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return "any"


def _array_kind(array: Any) -> str:
    dtype = str(array.dtype)
    if array.ndim == 0:
        return SCALAR_KINDS.get(array.dtype.kind, "any")
    if dtype not in DTYPES:
        return "any"
    shape = ",".join(["-1", *map(str, array.shape[1:])]) + ("," if array.ndim == 1 else "")
    return f"ndarray[{dtype},({shape})]"


def _frame_kind(frame: Any) -> str:
    """DataFrame[name:dtype,...], or a plain DataFrame when a column cannot be spelled."""
    columns = []
    for name in frame.columns:
        if not isinstance(name, str) or not COLUMN.match(name):
            return "DataFrame"
        columns.append(f"{name}:{_column_dtype(frame[name])}")
    if not columns:
        return "DataFrame"
    text = f"DataFrame[{','.join(columns)}]"
    try:
        encode(parse_type(text), frame, "value")
    except (Mismatch, ValueError):
        return "DataFrame"
    return text


def _column_dtype(column: Any) -> str:
    dtype = str(column.dtype)
    if dtype in DTYPES:
        return dtype
    if dtype in ("str", "string") or (dtype == "object" and all(
            isinstance(v, str) for v in column)):
        return "str"
    return "any"
