"""A parsed type: its JSON Schema and the check of decoded JSON against it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SCALARS = ("int", "float", "str", "bool", "bytes", "file", "any", "list", "dict")
# numpy dtype -> (bytes per item, JSON kind of an element, (min, max) for integers)
DTYPES: dict[str, tuple[int, str, tuple[int, int] | None]] = {
    "bool": (1, "bool", None),
    **{f"int{b}": (b // 8, "int", (-(2 ** (b - 1)), 2 ** (b - 1) - 1)) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (b // 8, "int", (0, 2 ** b - 1)) for b in (8, 16, 32, 64)},
    **{f"float{b}": (b // 8, "float", None) for b in (16, 32, 64)},
}
COLUMN_DTYPES = (*DTYPES, "str", "any")
# how annotations and Python spellings map to this grammar
SPELLINGS = {"List": "list", "Dict": "dict", "NDArray": "ndarray", "Any": "any",
             "Optional": "Optional", "dataframe": "DataFrame", "bytearray": "bytes",
             "object": "any", "integer": "int"}
PREFIXES = re.compile(r"^(?:typing|numpy\.typing|npt|numpy|np|pandas|pd)\.")
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
MAX_ERRORS = 20


@dataclass(frozen=True)
class Type:
    """One parsed type; `str()` gives its canonical spelling."""

    kind: str  # a SCALARS name, "list"/"dict" with `item`, "optional", "ndarray", "dataframe"
    item: Type | None = None
    dtype: str | None = None  # ndarray
    shape: tuple[int, ...] | None = None  # ndarray, -1 for any length
    columns: tuple[tuple[str, str], ...] | None = None  # DataFrame: (name, dtype)

    def __str__(self) -> str:
        if self.kind == "optional":
            return f"Optional[{self.item}]"
        if self.kind in ("list", "dict") and self.item is not None:
            return f"list[{self.item}]" if self.kind == "list" else f"dict[str,{self.item}]"
        if self.kind == "ndarray":
            args = [self.dtype or "any"] if self.dtype or self.shape is not None else []
            if self.shape is not None:
                args.append("(" + ",".join(map(str, self.shape)) + ("," if len(self.shape) == 1
                                                                    else "") + ")")
            return "ndarray" + (f"[{','.join(args)}]" if args else "")
        if self.kind == "dataframe":
            cols = ",".join(f"{n}:{d}" for n, d in self.columns or ())
            return "DataFrame" + (f"[{cols}]" if cols else "")
        return self.kind

    @property
    def optional(self) -> bool:
        """May be null, or left out of a request (the cell then sees None)."""
        return self.kind == "optional"

    # -- JSON Schema (2020-12, as OpenAPI 3.1 uses it) ------------------------------------

    def schema(self) -> dict[str, Any]:
        kind = self.kind
        if kind in _PLAIN_SCHEMAS:
            return dict(_PLAIN_SCHEMAS[kind])
        if kind == "file":
            return {"anyOf": [_BYTES_SCHEMA, _FILE_OBJECT_SCHEMA],
                    "description": "base64, or an object with the file's name and type"}
        if kind == "list":
            return {"type": "array", "items": self.item.schema()}  # type: ignore[union-attr]
        if kind == "dict":
            return {"type": "object", "additionalProperties": self.item.schema()}  # type: ignore[union-attr]
        if kind == "optional":
            return {"anyOf": [self.item.schema(), {"type": "null"}]}  # type: ignore[union-attr]
        if kind == "ndarray":
            return self._array_schema()
        columns = {name: _element_schema(dtype) for name, dtype in self.columns or ()}
        row: dict[str, Any] = {"type": "object"}
        if columns:
            row.update(properties=columns, required=list(columns), additionalProperties=False)
        return {"type": "array", "items": row,
                "description": "a pandas DataFrame as records: one object per row"}

    def _array_schema(self) -> dict[str, Any]:
        nested: dict[str, Any] = _element_schema(self.dtype or "any")
        for length in reversed(self.shape or ()):
            nested = {"type": "array", "items": nested}
            if length >= 0:
                nested.update(minItems=length, maxItems=length)
        if self.shape is None:
            nested = {"type": "array", "description": "nested lists, one level per axis"}
        packed = {
            "type": "object",
            "properties": {
                "dtype": {"const": self.dtype} if self.dtype else {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "data": {**_BYTES_SCHEMA, "description": "the array's bytes, C order, "
                                                         "little-endian"},
            },
            "required": ["dtype", "shape", "data"],
            "additionalProperties": False,
        }
        return {"anyOf": [nested, packed], "description": f"a numpy array ({self}): nested "
                "lists, or its raw bytes in base64 with dtype and shape"}

    # -- validation of decoded JSON (the gateway and the worker) -------------------------

    def errors(self, value: Any, path: str, out: list[dict[str, str]]) -> None:
        """Append what is wrong with `value` (decoded JSON) to `out`, each with its path."""
        if len(out) >= MAX_ERRORS:
            return
        kind = self.kind
        check = CHECKS.get(kind)
        if check is not None:
            if not check(value):
                out.append({"field": path, "message": f"expected {self}, got {_kind(value)}"})
        elif kind == "optional":
            if value is not None:
                self.item.errors(value, path, out)  # type: ignore[union-attr]
        elif kind == "bytes":
            if not _is_base64(value):
                out.append({"field": path, "message": f"expected bytes as base64, got "
                            f"{_kind(value) if not isinstance(value, str) else 'other text'}"})
        elif kind == "file":
            self._file_errors(value, path, out)
        elif kind == "list":
            if not isinstance(value, list):
                out.append({"field": path, "message": f"expected {self}, got {_kind(value)}"})
            elif self.item is not None and self.item.kind != "any":
                for i, v in enumerate(value):
                    self.item.errors(v, f"{path}[{i}]", out)
                    if len(out) >= MAX_ERRORS:
                        return
        elif kind == "dict":
            if not isinstance(value, dict):
                out.append({"field": path, "message": f"expected {self}, got {_kind(value)}"})
            elif self.item is not None and self.item.kind != "any":
                for k, v in value.items():
                    self.item.errors(v, f"{path}.{k}", out)
                    if len(out) >= MAX_ERRORS:
                        return
        elif kind == "ndarray":
            self._array_errors(value, path, out)
        else:
            self._frame_errors(value, path, out)

    def _file_errors(self, value: Any, path: str, out: list[dict[str, str]]) -> None:
        if isinstance(value, dict):
            for key in value:
                if key not in ("filename", "content_type", "data"):
                    out.append({"field": f"{path}.{key}", "message": "not a field of a file "
                                "(filename, content_type, data)"})
            for key in ("filename", "content_type"):
                if key in value and not isinstance(value[key], str):
                    out.append({"field": f"{path}.{key}", "message": "expected str"})
            value = value.get("data")
            path = f"{path}.data"
        if not _is_base64(value):
            out.append({"field": path, "message": "expected the file's bytes as base64"})

    def _array_errors(self, value: Any, path: str, out: list[dict[str, str]]) -> None:
        if isinstance(value, dict):
            problem = _packed_array_problem(value, self.dtype)
            shape = value.get("shape") if problem is None else None
        else:
            shape, problem = _nested_shape(value, self.dtype or "any")
        if problem is None and self.shape is not None:
            problem = _shape_problem(shape, self.shape)  # type: ignore[arg-type]
        if problem is not None:
            out.append({"field": path, "message": f"expected {self}: {problem}"})

    def _frame_errors(self, value: Any, path: str, out: list[dict[str, str]]) -> None:
        if not isinstance(value, list):
            out.append({"field": path, "message": "expected a DataFrame as records (a list of "
                        f"objects, one per row), got {_kind(value)}"})
            return
        columns = dict(self.columns or ())
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                out.append({"field": f"{path}[{i}]", "message": f"expected a row object, got "
                            f"{_kind(row)}"})
            elif columns:
                for name, dtype in columns.items():
                    if name not in row:
                        out.append({"field": f"{path}[{i}].{name}", "message": "missing column"})
                    elif row[name] is not None and not _element_ok(row[name], dtype):
                        out.append({"field": f"{path}[{i}].{name}", "message":
                                    f"expected {dtype}, got {_kind(row[name])}"})
                for name in row:
                    if name not in columns:
                        out.append({"field": f"{path}[{i}].{name}", "message":
                                    "not a declared column"})
            if len(out) >= MAX_ERRORS:
                return


_PLAIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "str": {"type": "string"},
    "bool": {"type": "boolean"}, "any": {}, "list": {"type": "array"}, "dict": {"type": "object"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
}
_BYTES_SCHEMA = _PLAIN_SCHEMAS["bytes"]
_FILE_OBJECT_SCHEMA = {
    "type": "object",
    "properties": {"filename": {"type": "string"}, "content_type": {"type": "string"},
                   "data": _BYTES_SCHEMA},
    "required": ["data"], "additionalProperties": False,
}
CHECKS = {
    "int": lambda v: type(v) is int,
    "float": lambda v: type(v) is float or type(v) is int,
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "any": lambda v: True,
}


def _element_schema(dtype: str) -> dict[str, Any]:
    if dtype == "str":
        return {"type": "string"}
    if dtype == "any":
        return {}
    _, kind, bounds = DTYPES[dtype]
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "float":
        return {"type": "number"}
    low, high = bounds  # type: ignore[misc]
    return {"type": "integer", "minimum": low, "maximum": high}


def _element_ok(value: Any, dtype: str) -> bool:
    if dtype == "any":
        return True
    if dtype == "str":
        return isinstance(value, str)
    _, kind, bounds = DTYPES[dtype]
    if kind == "float":
        return type(value) is float or type(value) is int
    if kind == "bool":
        return type(value) is bool
    return type(value) is int and bounds[0] <= value <= bounds[1]  # type: ignore[index]


def _kind(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _is_base64(value: Any) -> bool:
    return isinstance(value, str) and len(value) % 4 == 0 and BASE64.match(value) is not None


def _nested_shape(value: Any, dtype: str) -> tuple[tuple[int, ...] | None, str | None]:
    """The shape of an array given as nested lists, or what is wrong with it."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    rows = [value]
    for depth, length in enumerate(shape):
        next_rows = []
        for row in rows:
            if not isinstance(row, list) or len(row) != length:
                return None, f"ragged nested lists at depth {depth}"
            next_rows.extend(row)
        rows = next_rows
    kind = "number" if dtype == "any" else DTYPES[dtype][1]
    if kind == "float":
        ok = all(type(v) is float or type(v) is int for v in rows)
    elif kind == "number":
        ok = all(type(v) is float or type(v) is int or type(v) is bool for v in rows)
    elif kind == "bool":
        ok = all(type(v) is bool for v in rows)
    else:
        low, high = DTYPES[dtype][2]  # type: ignore[misc]
        ok = all(type(v) is int and low <= v <= high for v in rows)
    if not ok:
        bad = next((v for v in rows if isinstance(v, list)), None)
        if bad is not None:
            return None, "ragged nested lists"
        wanted = "numbers" if dtype == "any" else f"{dtype} values"
        return None, f"elements must be {wanted}"
    return tuple(shape), None


def _packed_array_problem(value: dict[str, Any], dtype: str | None) -> str | None:
    """What is wrong with {"dtype", "shape", "data"}, checked without decoding the data."""
    extra = set(value) - {"dtype", "shape", "data"}
    if extra:
        return f"unexpected key {sorted(extra)[0]!r} (dtype, shape, data)"
    got = value.get("dtype")
    if got not in DTYPES:
        return f"dtype must be one of {', '.join(DTYPES)}"
    if dtype is not None and got != dtype:
        return f"dtype {got}, not {dtype}"
    shape = value.get("shape")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        return "shape must be a list of lengths"
    data = value.get("data")
    if not isinstance(data, str) or not _is_base64(data):
        return "data must be base64"
    size = len(data) // 4 * 3 - len(data) + len(data.rstrip("="))
    expected = DTYPES[got][0]
    for n in shape:
        expected *= n
    if size != expected:
        return f"data holds {size} bytes; dtype and shape make {expected}"
    return None


def _shape_problem(shape: tuple[int, ...] | list[int], declared: tuple[int, ...]) -> str | None:
    if len(shape) != len(declared) or any(d >= 0 and d != n for n, d in zip(shape, declared, strict=False)):
        return f"shape {tuple(shape)} does not fit {declared}"
    return None
