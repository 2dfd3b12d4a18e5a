"""The type mapping of the Open Inference Protocol: declared types <-> tensors.

- `ndarray[dtype,shape]` -> the dtype's datatype (BOOL, INT8..64, UINT8..64, FP16, FP32,
  FP64) with the declared shape (-1 stays -1); an `ndarray` without a dtype takes any of them
  (datatype "ANY" in the metadata);
- `str`, `bytes` and `file` -> BYTES, shape [1]; `int`, `float`, `bool` -> INT64, FP64, BOOL,
  shape [1];
- `list[T]` of those -> 1-D, shape [-1];
- `DataFrame[a:...,b:...]` -> one tensor per column, named `{field}.{column}`, shape [-1];
- `Optional[T]` maps as T, and may be left out of a request;
- the rest (`dict`, `any`, untyped `list` or `DataFrame`, nested lists) does not map: its
  metadata says datatype "UNMAPPED", and a request that names it is refused.

Tensors are kept as the raw little-endian bytes the binary forms carry, or as the flat list
of the JSON form, and turned into the other only when asked: no numpy in the gateway.
"""

from __future__ import annotations

import array
import struct
import sys
from dataclasses import dataclass
from typing import Any

from ...types import Type, parse_type

# numpy dtype -> (OIP datatype, struct code)
CODES: dict[str, tuple[str, str]] = {
    "bool": ("BOOL", "?"),
    **{f"int{b}": (f"INT{b}", c) for b, c in ((8, "b"), (16, "h"), (32, "i"), (64, "q"))},
    **{f"uint{b}": (f"UINT{b}", c) for b, c in ((8, "B"), (16, "H"), (32, "I"), (64, "Q"))},
    **{f"float{b}": (f"FP{b}", c) for b, c in ((16, "e"), (32, "f"), (64, "d"))},
}
DTYPE_OF = {datatype: dtype for dtype, (datatype, _) in CODES.items()}
UNMAPPED = "UNMAPPED"
ANY = "ANY"
LITTLE = sys.byteorder == "little"
# a scalar or a list item: its element dtype ("str"/"bytes" for BYTES) and what it accepts
ELEMENTS = {"int": "int64", "float": "float64", "bool": "bool", "str": "str", "bytes": "bytes",
            "file": "bytes"}


class TensorError(Exception):
    """A tensor the request sent, or the answer holds, does not fit: a 400 (or a 500)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Spec:
    """One tensor of a model's metadata, and where it sits among the declared fields."""

    name: str
    field: str
    form: str  # array, scalar, list, column, unmapped
    datatype: str
    shape: tuple[int, ...]
    element: str = ""  # a numpy dtype, "str" or "bytes" (scalars, lists, columns, arrays)
    column: str | None = None
    required: bool = True
    declared: str = ""

    def metadata(self) -> dict[str, Any]:
        """The tensor as the model metadata lists it."""
        shape = [-1] if self.form == "array" and not self.shape else list(self.shape)
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": shape}
        if self.form == "unmapped":
            out["parameters"] = {"declared": self.declared,
                                 "reason": "this type has no tensor form: call the native "
                                           "REST API for it"}
        return out

    def accepts(self, datatype: str) -> bool:
        """Whether a tensor of `datatype` can carry this field."""
        if datatype == self.datatype:
            return True
        if self.datatype == ANY:
            return datatype in DTYPE_OF
        if self.form in ("scalar", "list"):  # any width of integer or float for a number
            return (self.element == "int64" and datatype.lstrip("U")[:3] == "INT"
                    or self.element == "float64" and datatype[:2] == "FP")
        return False


def _datatype(element: str) -> str:
    return "BYTES" if element in ("str", "bytes") else CODES[element][0]


def specs_of(fields: list[dict[str, str]]) -> list[Spec]:
    """The tensors of declared inputs or outputs, in their order."""
    specs: list[Spec] = []
    for declared in fields:
        name, kind = declared["name"], parse_type(declared["type"])
        required = kind.kind != "optional"
        while kind.kind == "optional":
            kind = kind.item  # type: ignore[assignment]
        specs += _specs(name, kind, required, declared["type"])
    return specs


def _specs(name: str, kind: Type, required: bool, declared: str) -> list[Spec]:
    k = kind.kind
    if k == "ndarray":
        dtype = kind.dtype or ""
        if dtype and dtype not in CODES:
            return [Spec(name, name, "unmapped", UNMAPPED, (), required=required,
                         declared=declared)]
        shape = kind.shape or ()  # (): any shape
        return [Spec(name, name, "array", CODES[dtype][0] if dtype else ANY, shape, dtype,
                     required=required, declared=declared)]
    if k in ELEMENTS:
        element = ELEMENTS[k]
        return [Spec(name, name, "scalar", _datatype(element), (1,), element,
                     required=required, declared=declared)]
    if k == "list" and kind.item is not None and kind.item.kind in ELEMENTS:
        element = ELEMENTS[kind.item.kind]
        return [Spec(name, name, "list", _datatype(element), (-1,), element,
                     required=required, declared=declared)]
    if k == "dataframe" and kind.columns and all(d != "any" for _, d in kind.columns):
        return [Spec(f"{name}.{column}", name, "column", _datatype(dtype), (-1,), dtype,
                     column, required, declared) for column, dtype in kind.columns]
    return [Spec(name, name, "unmapped", UNMAPPED, (), required=required, declared=declared)]


# -- tensor contents ------------------------------------------------------------------------

def count(shape: list[int]) -> int:
    """Elements in a tensor of `shape`."""
    n = 1
    for dim in shape:
        n *= dim
    return n


def flat(data: Any) -> list[Any]:
    """The row-major elements of JSON `data`, flat or nested."""
    if not isinstance(data, list):
        raise TensorError("data must be a list of the tensor's elements")
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for row in data:
            out += flat(row)
        return out
    return data


def pack(datatype: str, values: list[Any]) -> bytes:
    """The raw little-endian bytes of a flat list of numbers or bools."""
    code = CODES[DTYPE_OF[datatype]][1]
    try:
        if code == "?":
            if not all(isinstance(v, bool) for v in values):
                raise TypeError("BOOL data must be true or false")
            return bytes(values)
        if code == "e" or not LITTLE:
            return struct.pack(f"<{len(values)}{code}", *values)
        return array.array(code, values).tobytes()
    except (TypeError, OverflowError, struct.error, ValueError) as exc:
        raise TensorError(f"the data do not fit {datatype}: {exc}") from None


def unpack(datatype: str, raw: bytes) -> list[Any]:
    """The flat list of numbers (or bools) in raw little-endian bytes."""
    code = CODES[DTYPE_OF[datatype]][1]
    size = struct.calcsize(code)
    if len(raw) % size:
        raise TensorError(f"{len(raw)} bytes are not a whole number of {datatype}")
    if code in "e?" or not LITTLE:
        return list(struct.unpack(f"<{len(raw) // size}{code}", raw))
    values = array.array(code)
    values.frombytes(raw)
    return values.tolist()


def item_size(datatype: str) -> int:
    return struct.calcsize(CODES[DTYPE_OF[datatype]][1])


def pack_bytes(items: list[bytes]) -> bytes:
    """BYTES elements in the binary form: each with its 4-byte little-endian length."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def unpack_bytes(raw: bytes) -> list[bytes]:
    """The elements of a BYTES tensor's binary form."""
    items, at = [], 0
    view = memoryview(raw)
    while at < len(raw):
        if at + 4 > len(raw):
            raise TensorError("a BYTES element is cut short in the binary data")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise TensorError("a BYTES element is cut short in the binary data")
        items.append(bytes(view[at:at + size]))
        at += size
    return items


class Tensor:
    """One tensor's name, datatype, shape and contents, raw or as a flat list."""

    __slots__ = ("name", "datatype", "shape", "raw", "values", "parameters")

    def __init__(self, name: str, datatype: str, shape: list[int], raw: bytes | None = None,
                 values: list[Any] | None = None, parameters: dict[str, Any] | None = None
                 ) -> None:
        self.name, self.datatype, self.shape = name, datatype, shape
        self.raw, self.values = raw, values
        self.parameters = parameters or {}

    def as_raw(self) -> bytes:
        """The binary form (BYTES elements length-prefixed)."""
        if self.raw is None:
            values = self.values or []
            self.raw = pack_bytes(values) if self.datatype == "BYTES" else pack(self.datatype,
                                                                                 values)
        return self.raw

    def as_list(self) -> list[Any]:
        """The flat elements (BYTES elements as bytes)."""
        if self.values is None:
            raw = self.raw or b""
            self.values = unpack_bytes(raw) if self.datatype == "BYTES" else unpack(
                self.datatype, raw)
        return self.values

    def checked(self) -> Tensor:
        """Itself, once its contents hold as many elements as its shape says."""
        if any(not isinstance(d, int) or d < 0 for d in self.shape):
            raise TensorError(f"input {self.name!r}: a shape is a list of lengths >= 0")
        n = count(self.shape)
        if self.datatype != "BYTES" and self.values is None and self.datatype in DTYPE_OF:
            got = len(self.raw or b"") // item_size(self.datatype)
        else:
            got = len(self.as_list())
        if got != n:
            raise TensorError(f"input {self.name!r}: shape {self.shape} holds {n} elements, "
                              f"the data {got}")
        return self
