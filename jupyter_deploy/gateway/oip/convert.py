"""Request tensors -> the native `{"input": {...}}` values, and the native output -> tensors.

Arrays go to the instance in the native packed form (`{"dtype", "shape", "data": base64}`)
and come back in it (the request asks `x-array-encoding: base64`), so a binary tensor is
only base64-coded on its way, never turned into lists.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from .tensors import CODES, DTYPE_OF, Spec, Tensor, TensorError, count

NAN = float("nan")


def native_inputs(specs: list[Spec], tensors: list[Tensor]) -> dict[str, Any]:
    """The native input object of a request's tensors; TensorError says what does not fit."""
    by_name = {spec.name: spec for spec in specs}
    values: dict[str, Any] = {}
    columns: dict[str, dict[str, list[Any]]] = {}
    seen: set[str] = set()
    for tensor in tensors:
        spec = by_name.get(tensor.name)
        if spec is None:
            known = ", ".join(s.name for s in specs if s.form != "unmapped") or "none"
            raise TensorError(f"unexpected input {tensor.name!r} (the model's inputs: {known})")
        if tensor.name in seen:
            raise TensorError(f"input {tensor.name!r} is sent twice")
        seen.add(tensor.name)
        if spec.form == "unmapped":
            raise TensorError(f"input {spec.name!r} is declared {spec.declared}, which has no "
                              "tensor form: call the native REST API for it")
        if not spec.accepts(tensor.datatype):
            raise TensorError(f"input {spec.name!r}: expected datatype {spec.datatype}, got "
                              f"{tensor.datatype}")
        _fit_shape(spec, tensor.checked())
        if spec.form == "column":
            columns.setdefault(spec.field, {})[spec.column or ""] = _elements(spec, tensor)
        else:
            values[spec.field] = _value(spec, tensor)
    for spec in specs:
        needed = spec.required or (spec.form == "column" and spec.field in columns)
        if needed and spec.name not in seen and spec.form != "unmapped":
            raise TensorError(f"missing input {spec.name!r} ({spec.datatype}, shape "
                              f"{list(spec.shape)})")
        if needed and spec.form == "unmapped":
            raise TensorError(f"input {spec.name!r} is declared {spec.declared}, which has no "
                              "tensor form: call the native REST API for it")
    for field, by_column in columns.items():
        lengths = {len(v) for v in by_column.values()}
        if len(lengths) > 1:
            raise TensorError(f"the columns of {field!r} have different lengths: "
                              f"{sorted(lengths)}")
        names = list(by_column)
        values[field] = [dict(zip(names, row, strict=True))
                         for row in zip(*by_column.values(), strict=True)]
    return values


def _fit_shape(spec: Spec, tensor: Tensor) -> None:
    shape = tensor.shape
    if spec.form == "scalar":
        fits = count(shape) == 1
    elif spec.form == "array":  # no declared shape: any
        fits = not spec.shape or len(shape) == len(spec.shape) and all(
            d in (-1, n) for n, d in zip(shape, spec.shape, strict=True))
    else:
        fits = len(shape) == 1
    if not fits:
        raise TensorError(f"input {spec.name!r}: expected shape {list(spec.shape)}, got "
                          f"{shape}")


def _value(spec: Spec, tensor: Tensor) -> Any:
    if spec.form == "array":
        dtype = spec.element or DTYPE_OF[tensor.datatype]
        return {"dtype": dtype, "shape": tensor.shape,
                "data": base64.b64encode(tensor.as_raw()).decode()}
    elements = _elements(spec, tensor)
    return elements[0] if spec.form == "scalar" else elements


def _elements(spec: Spec, tensor: Tensor) -> list[Any]:
    items = tensor.as_list()
    if spec.element == "str":
        try:
            return [item.decode() if isinstance(item, bytes) else _text(spec, item)
                    for item in items]
        except UnicodeDecodeError:
            raise TensorError(f"input {spec.name!r}: the BYTES are not UTF-8 text") from None
    if spec.element == "bytes":
        return [base64.b64encode(item if isinstance(item, bytes) else _text(spec, item).encode()
                                 ).decode() for item in items]
    return items


def _text(spec: Spec, item: Any) -> str:
    if not isinstance(item, str):
        raise TensorError(f"input {spec.name!r}: BYTES data in JSON are strings")
    return item


def tensors_of(specs: list[Spec], output: dict[str, Any]) -> list[Tensor]:
    """The output tensors of a native output object (an Optional output left None is left
    out); TensorError (a 500) when the cell's answer has no tensor form."""
    tensors = []
    for spec in specs:
        value = output.get(spec.field)
        if value is None:
            continue
        try:
            tensors.append(_tensor(spec, value))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise TensorError(f"output {spec.name!r} cannot be sent as a tensor", 500) from None
    return tensors


def _tensor(spec: Spec, value: Any) -> Tensor:
    if spec.form == "array":
        if not isinstance(value, dict):  # an array of a dtype with no raw form
            raise TypeError(value)
        datatype = CODES[value["dtype"]][0]
        return Tensor(spec.name, datatype, list(value["shape"]),
                      raw=base64.b64decode(value["data"]))
    if spec.form == "column":
        items = [row.get(spec.column) for row in value]
    else:
        items = [value] if spec.form == "scalar" else list(value)
    if spec.element == "str":
        items = [item.encode() for item in items]
    elif spec.element == "bytes":
        items = [base64.b64decode(item) for item in items]
    elif spec.element.startswith("float"):
        items = [NAN if item is None else item for item in items]
    datatype = spec.datatype if spec.datatype != "ANY" else "FP64"
    return Tensor(spec.name, datatype, [len(items)], values=items)


def json_data(tensor: Tensor) -> list[Any]:
    """A tensor's data in the JSON form; None for a NaN (JSON has no NaN)."""
    items = tensor.as_list()
    if tensor.datatype == "BYTES":
        return [item.decode() for item in items]  # UnicodeDecodeError: the caller goes binary
    if tensor.datatype[:2] == "FP" and not _finite(items):
        return [None if isinstance(v, float) and not math.isfinite(v) else v for v in items]
    return items


def _finite(items: list[Any]) -> bool:
    """Whether no element is NaN or infinite: one pass in C, not one test per element."""
    try:
        return math.isfinite(math.fsum(items))
    except (OverflowError, ValueError):  # inf - inf, or a sum past the largest float
        return False
