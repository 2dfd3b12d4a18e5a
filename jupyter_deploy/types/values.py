"""Between JSON and the Python values a cell reads and sets, by declared type.

Encodings on the wire (also in the OpenAPI document):
- bytes: base64 text. file: base64 text, or {"filename", "content_type", "data": base64};
  the cell gets a `File`, which is bytes with `.filename` and `.content_type` (None when
  not given). Plain bytes are a file whose name and type are left out.
- ndarray: nested lists, or {"dtype", "shape", "data": base64 of the bytes, C order,
  little-endian}. Outputs are nested lists unless the request says
  `x-array-encoding: base64`.
- DataFrame: records, one JSON object per row.
- float: NaN and infinities are sent as null.

numpy and pandas are imported only when a value of theirs is met.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from . import Type, parse_type


class File(bytes):
    """An uploaded file: its bytes, with the name and content type the caller gave."""

    filename: str | None = None
    content_type: str | None = None

    def __new__(cls, data: bytes, filename: str | None = None,
                content_type: str | None = None) -> File:
        file = super().__new__(cls, data)
        file.filename, file.content_type = filename, content_type
        return file


class Mismatch(Exception):
    """A value does not have its declared type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def needs_decoding(kind: Type) -> bool:
    """False when the decoded JSON already is the value the cell should see."""
    if kind.kind in ("int", "str", "bool", "any", "list", "dict") and kind.item is None:
        return False
    if kind.kind in ("list", "dict", "optional"):
        return needs_decoding(kind.item)  # type: ignore[arg-type]
    return True


def decode(kind: Type, value: Any) -> Any:
    """The Python value for a JSON value that passed `Type.errors`."""
    k = kind.kind
    if value is None and k in ("optional", "any"):
        return None
    if k == "float":
        return float(value)
    if k == "bytes":
        return base64.b64decode(value)
    if k == "file":
        if isinstance(value, dict):
            return File(base64.b64decode(value["data"]), value.get("filename"),
                        value.get("content_type"))
        return File(base64.b64decode(value))
    if k == "optional":
        return decode(kind.item, value)  # type: ignore[arg-type]
    if k == "list" and kind.item is not None:
        return [decode(kind.item, v) for v in value]
    if k == "dict" and kind.item is not None:
        return {key: decode(kind.item, v) for key, v in value.items()}
    if k == "ndarray":
        import numpy as np

        if isinstance(value, dict):
            dtype = np.dtype(value["dtype"]).newbyteorder("<")
            data = bytearray(base64.b64decode(value["data"]))  # writable, like any input
            array = np.frombuffer(data, dtype=dtype).reshape(value["shape"])
            return array.astype(array.dtype.newbyteorder("="), copy=False)
        return np.asarray(value, dtype=kind.dtype)
    if k == "dataframe":
        import pandas as pd

        names = [name for name, _ in kind.columns or ()]
        frame = pd.DataFrame.from_records(value, columns=names or None)
        for name, column_dtype in kind.columns or ():
            if column_dtype not in ("str", "any") and frame[name].notna().all():
                frame[name] = frame[name].astype(column_dtype)
        return frame
    return value


def as_instance_sees(kind: Type, value: Any) -> Any:
    """An example value as an instance hands it to the cell: plain bytes for a `file` input
    become a `File` (no name, no content type), so `.filename` works at pin time too."""
    if kind.kind == "optional" and value is not None:
        return as_instance_sees(kind.item, value)  # type: ignore[arg-type]
    if kind.kind == "file" and isinstance(value, (bytes, bytearray, memoryview)) \
            and not isinstance(value, File):
        return File(bytes(value))
    return value


def encode(kind: Type, value: Any, field: str, arrays: str = "list") -> Any:
    """The JSON value of a Python value, checked against its declared type (`Mismatch`)."""
    k = kind.kind
    if k == "any":
        return value
    if value is None:
        if k == "optional":
            return None
        raise Mismatch(field, f"expected {kind}, got None")
    if k == "optional":
        return encode(kind.item, value, field, arrays)  # type: ignore[arg-type]
    if k == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if _numpy_scalar(value, "iu"):
            return int(value)
    elif k == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                or _numpy_scalar(value, "iuf"):
            number = float(value)
            return number if math.isfinite(number) else None
    elif k == "str":
        if isinstance(value, str):
            return value
    elif k == "bool":
        if isinstance(value, bool) or _numpy_scalar(value, "b"):
            return bool(value)
    elif k in ("bytes", "file"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = base64.b64encode(value).decode()
            if k == "bytes":
                return data
            # plain bytes are a file too; a name or type nobody gave is left out, not null
            file = {key: getattr(value, key, None) for key in ("filename", "content_type")}
            return {**{key: given for key, given in file.items() if given is not None},
                    "data": data}
    elif k == "list":
        if isinstance(value, (list, tuple)) or _numpy_array(value):
            if kind.item is None:
                return plain(value)
            return [encode(kind.item, v, f"{field}[{i}]", arrays) for i, v in enumerate(value)]
    elif k == "dict":
        if isinstance(value, Mapping):
            if kind.item is None:
                return plain(value)
            return {_key(key, field): encode(kind.item, v, f"{field}.{key}", arrays)
                    for key, v in value.items()}
    elif k == "ndarray":
        if _numpy_array(value):
            return _encode_array(kind, value, field, arrays)
    elif k == "dataframe" and type(value).__name__ == "DataFrame" and "pandas" in sys.modules:
        return _encode_frame(kind, value, field)
    raise Mismatch(field, f"expected {kind}, got {_described(value)}")


def _key(key: Any, field: str) -> str:
    if not isinstance(key, str):
        raise Mismatch(field, f"keys must be str, got {type(key).__name__}")
    return key


def _numpy_scalar(value: Any, kinds: str) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and getattr(value, "ndim", 1) == 0 and dtype.kind in kinds


def _numpy_array(value: Any) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _described(value: Any) -> str:
    if _numpy_array(value):
        return f"ndarray {value.dtype} {tuple(value.shape)}"
    return type(value).__name__


def _encode_array(kind: Type, value: Any, field: str, arrays: str) -> Any:
    dtype = str(value.dtype)
    if kind.dtype is not None and dtype != kind.dtype:
        raise Mismatch(field, f"expected {kind}, got an array of dtype {dtype}")
    if kind.shape is not None and (len(kind.shape) != value.ndim or any(
            d >= 0 and d != n for n, d in zip(value.shape, kind.shape, strict=False))):
        raise Mismatch(field, f"expected {kind}, got an array of shape {tuple(value.shape)}")
    import numpy as np

    if arrays == "base64" and value.dtype.kind in "biuf":
        little = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        return {"dtype": dtype, "shape": list(value.shape),
                "data": base64.b64encode(little.tobytes()).decode()}
    if value.dtype.kind == "f" and not bool(np.isfinite(value).all()):
        return plain(value)
    return value.tolist()


def _encode_frame(kind: Type, frame: Any, field: str) -> Any:
    if kind.columns:
        declared = [name for name, _ in kind.columns]
        missing = [n for n in declared if n not in frame.columns]
        extra = [str(n) for n in frame.columns if n not in declared]
        if missing or extra:
            what = f"missing columns {missing}" if missing else f"undeclared columns {extra}"
            raise Mismatch(field, f"expected {kind}, got a DataFrame with {what}")
        for name, dtype in kind.columns:
            got = frame[name].dtype
            if not _column_fits(got, dtype):
                raise Mismatch(f"{field}.{name}", f"expected column dtype {dtype}, got {got}")
        frame = frame[declared]
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _column_fits(got: Any, dtype: str) -> bool:
    if dtype == "any":
        return True
    if dtype == "str":
        return got.kind in "OU" or str(got) in ("string", "str")
    return str(got) == dtype


def plain(value: Any) -> Any:
    """Any value as JSON: numpy as lists, DataFrames as records, bytes as base64, NaN null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode()
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_json"):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def encode_fields(fields: list[dict[str, str]], values: Mapping[str, Any], where: str,
                  arrays: str = "list") -> dict[str, Any]:
    """The JSON object of declared fields, `where` naming them in errors ("output")."""
    return {f["name"]: encode(parse_type(f["type"]), values[f["name"]],
                              f"{where}.{f['name']}", arrays) for f in fields}


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for whatever an undeclared (`any`) value holds."""
    return plain(value)
