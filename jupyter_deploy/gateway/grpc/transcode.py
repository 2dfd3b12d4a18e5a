"""Between a node's typed messages (see proto.py) and the JSON the REST path carries.

Driven by the declared types, so that a gRPC call becomes exactly the REST body
`{"input": {...}}` and the REST answer `{"output": {...}}` becomes the typed reply: both
protocols give the same results. Arrays go packed both ways (the instance is asked for
`x-array-encoding: base64`), so no numpy is needed here.

A message field that is not set is a missing input (an error unless it is Optional or
`any`); a scalar that is not set is its zero value, as proto3 has it.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from ...types import DTYPES, Type
from .proto import column_names, normalized, slot, wrapped_field, wrapped_item

MISSING = object()
PACKED = {"bool": "?", "int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint8": "B",
          "uint16": "H", "uint32": "I", "uint64": "Q", "float16": "e", "float32": "f",
          "float64": "d"}


class Unsendable(Exception):
    """An output the typed reply cannot hold."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- google.protobuf.Value / Struct / ListValue ---------------------------------------------

def value_json(value: Any) -> Any:
    """The JSON of a google.protobuf.Value; whole numbers come back as ints."""
    which = value.WhichOneof("kind")
    if which == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) <= 2 ** 53 else number
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "struct_value":
        return struct_json(value.struct_value)
    if which == "list_value":
        return [value_json(v) for v in value.list_value.values]
    return None


def struct_json(message: Any) -> dict[str, Any]:
    return {key: value_json(v) for key, v in message.fields.items()}


def set_value(target: Any, data: Any) -> None:
    """Fill a google.protobuf.Value from JSON."""
    if data is None:
        target.null_value = 0
    elif isinstance(data, bool):
        target.bool_value = data
    elif isinstance(data, (int, float)):
        target.number_value = data
    elif isinstance(data, str):
        target.string_value = data
    elif isinstance(data, dict):
        set_struct(target.struct_value, data)
    else:
        set_list(target.list_value, data)


def set_struct(target: Any, data: dict[str, Any]) -> None:
    target.SetInParent()
    for key, item in data.items():
        set_value(target.fields[key], item)


def set_list(target: Any, data: list[Any]) -> None:
    target.SetInParent()
    for item in data:
        set_value(target.values.add(), item)


# -- scalars and messages of one value ------------------------------------------------------

def _scalar_json(kind: str, value: Any) -> Any:
    return base64.b64encode(value).decode() if kind == "bytes" else value


def _scalar_proto(kind: str, value: Any) -> Any:
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "float":
        return math.nan if value is None else float(value)  # the instance sends NaN as null
    return value


def _message_json(kind: Type, message: Any) -> Any:
    k = kind.kind
    if k == "any":
        return value_json(message)
    if k == "list":
        return [value_json(v) for v in message.values]
    if k == "dict":
        return struct_json(message)
    if k == "ndarray":
        return {"dtype": message.dtype, "shape": list(message.shape),
                "data": base64.b64encode(message.data).decode()}
    file: dict[str, Any] = {"data": base64.b64encode(message.data).decode()}
    for name in ("filename", "content_type"):
        if message.HasField(name):
            file[name] = getattr(message, name)
    return file


def _set_message(kind: Type, message: Any, value: Any, field: str) -> None:
    k = kind.kind
    message.SetInParent()
    if k == "any":
        set_value(message, value)
    elif k == "list":
        set_list(message, value)
    elif k == "dict":
        set_struct(message, value)
    elif k == "ndarray":
        if not isinstance(value, dict):
            value = _pack(value, kind.dtype, field)
        message.dtype = value["dtype"]
        message.shape.extend(value["shape"])
        message.data = base64.b64decode(value["data"])
    else:  # file
        if isinstance(value, str):
            value = {"data": value}
        for name in ("filename", "content_type"):
            if value.get(name) is not None:
                setattr(message, name, value[name])
        message.data = base64.b64decode(value["data"])


def _pack(nested: Any, dtype: str | None, field: str) -> dict[str, Any]:
    """An array the instance sent as nested lists, as {"dtype", "shape", "data"}."""
    shape, flat = [], [nested]
    while flat and all(isinstance(v, list) for v in flat):
        shape.append(len(flat[0]))
        flat = [v for row in flat for v in row]
    if dtype is None:
        if all(type(v) is bool for v in flat):
            dtype = "bool"
        elif all(type(v) is int for v in flat):
            dtype = "int64"
        else:
            dtype = "float64"
    if any(not isinstance(v, (int, float)) and v is not None for v in flat):
        raise Unsendable(field, "only arrays of numbers and booleans fit an NDArray")
    if DTYPES[dtype][1] == "float":
        flat = [math.nan if v is None else v for v in flat]
    data = struct.pack(f"<{len(flat)}{PACKED[dtype]}", *flat)
    return {"dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode()}


# -- fields -----------------------------------------------------------------------------------

def field_json(message: Any, name: str, kind: Type) -> Any:
    """The JSON value of one field of `message`, or MISSING."""
    kind = normalized(kind)
    k = kind.kind
    if k == "optional":
        inner = kind.item
        if not message.HasField(name):  # every Optional field has presence
            return None
        if wrapped_field(kind):
            return field_json(getattr(message, name), "value", inner)  # type: ignore[arg-type]
        return field_json(message, name, inner)  # type: ignore[arg-type]
    where = slot(kind)
    if where == "scalar":
        return _scalar_json(k, getattr(message, name))
    if where == "repeated":
        items = getattr(message, name)
        if k == "dataframe":
            return [_row_json(kind, row) for row in items]
        return [_item_json(kind.item, item) for item in items]  # type: ignore[arg-type]
    if where == "map":
        return {key: _item_json(kind.item, item)  # type: ignore[arg-type]
                for key, item in getattr(message, name).items()}
    if not message.HasField(name):
        return MISSING
    return _message_json(kind, getattr(message, name))


def _item_json(kind: Type, item: Any) -> Any:
    kind = normalized(kind)
    if wrapped_item(kind):
        value = field_json(item, "value", kind)
        return None if value is MISSING else value
    if slot(kind) == "scalar":
        return _scalar_json(kind.kind, item)
    return _message_json(kind, item)


def _row_json(kind: Type, row: Any) -> dict[str, Any]:
    if not kind.columns:
        return struct_json(row)
    out = {}
    for column, name, dtype in column_names(kind.columns):
        if dtype == "any":
            out[column] = value_json(getattr(row, name)) if row.HasField(name) else None
        else:
            out[column] = getattr(row, name) if row.HasField(name) else None
    return out


def set_field(message: Any, name: str, kind: Type, value: Any, field: str) -> None:
    """Set one field of `message` from JSON (`field`: its path, for errors)."""
    kind = normalized(kind)
    k = kind.kind
    if k == "optional":
        if value is None:
            return
        if wrapped_field(kind):
            wrapper = getattr(message, name)
            wrapper.SetInParent()
            return set_field(wrapper, "value", kind.item, value, field)  # type: ignore[arg-type]
        return set_field(message, name, kind.item, value, field)  # type: ignore[arg-type]
    where = slot(kind)
    if where == "scalar":
        setattr(message, name, _scalar_proto(k, value))
    elif where == "repeated":
        items = getattr(message, name)
        if k == "dataframe":
            for i, row in enumerate(value):
                _set_row(kind, items.add(), row, f"{field}[{i}]")
        elif slot(kind.item) == "scalar":  # type: ignore[arg-type]
            items.extend(_scalar_proto(kind.item.kind, v) for v in value)  # type: ignore[union-attr]
        else:
            for i, item in enumerate(value):
                _set_item(kind.item, items.add(), item, f"{field}[{i}]")  # type: ignore[arg-type]
    elif where == "map":
        items = getattr(message, name)
        item_kind = normalized(kind.item)  # type: ignore[arg-type]
        for key, item in value.items():
            if slot(item_kind) == "scalar":
                items[key] = _scalar_proto(item_kind.kind, item)
            else:
                _set_item(item_kind, items[key], item, f"{field}.{key}")
    else:
        _set_message(kind, getattr(message, name), value, field)


def _set_item(kind: Type, item: Any, value: Any, field: str) -> None:
    kind = normalized(kind)
    if wrapped_item(kind):
        item.SetInParent()
        set_field(item, "value", kind, value, field)
    else:
        _set_message(kind, item, value, field)


def _set_row(kind: Type, row: Any, value: dict[str, Any], field: str) -> None:
    if not kind.columns:
        set_struct(row, value)
        return
    row.SetInParent()
    for column, name, dtype in column_names(kind.columns):
        cell = value.get(column)
        if cell is None:
            continue
        if dtype == "any":
            set_value(getattr(row, name), cell)
        else:
            setattr(row, name, cell)


def message_json(message: Any, fields: list[tuple[str, Type]]) -> dict[str, Any]:
    """The JSON object of a typed message (unset message fields left out)."""
    out = {}
    for name, kind in fields:
        value = field_json(message, name, kind)
        if value is not MISSING:
            out[name] = value
    return out


def fill_message(message: Any, fields: list[tuple[str, Type]], values: dict[str, Any],
                 where: str) -> Any:
    """Set a typed message from a JSON object; Unsendable names the field that does not fit."""
    for name, kind in fields:
        if name in values:
            try:
                set_field(message, name, kind, values[name], f"{where}.{name}")
            except (ValueError, TypeError, KeyError, OverflowError, struct.error) as exc:
                raise Unsendable(f"{where}.{name}", str(exc) or type(exc).__name__) from None
    return message
