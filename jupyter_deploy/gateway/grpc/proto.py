"""A node's typed gRPC service, built at run time from its checkpoint's inputs and outputs.

For node `predictor`: file `jupyter_deploy/nodes/predictor.proto`, package
`jupyter_deploy.nodes.predictor` (a hyphen in the node's name becomes `_`, a leading digit
gets a `_` before it; node `adder` of project `my-team`: `jupyter_deploy.nodes.my_team.adder`), `service Node { rpc Execute(Input) returns (Output); }`, one field of
`Input` per declared input and one of `Output` per declared output, in their order.

    int -> int64        float -> double     str -> string      bool -> bool
    bytes -> bytes      file -> File {optional filename, optional content_type, bytes data}
    any -> google.protobuf.Value    list -> ListValue    dict -> Struct
    list[T] -> repeated T           dict[str,T] -> map<string,T>
    Optional[T] -> optional T (field presence: absent is null)
    ndarray -> NDArray {string dtype; repeated int64 shape; bytes data}  (C order, little-endian)
    DataFrame[a:int64,...] -> repeated <Field>Row {optional int64 a; ...}; DataFrame -> repeated Struct

A list, map or Optional that cannot be a field by itself (a list of lists, a map of lists, a
list of Optional items...) is wrapped in a nested message whose one field is `value`.
`File` and `NDArray` are declared in the node's own package, so the file needs no other file
than the well-known types: one download compiles. Each schema has its own descriptor pool,
since a pool cannot drop a file and a node's schema changes with its checkpoint.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from ...types import DTYPES, Type, parse_type

FILE_PREFIX = "jupyter_deploy/nodes/"
PACKAGE_PREFIX = "jupyter_deploy.nodes."
SERVICE = "Node"
METHOD = "Execute"
STRUCT_FILE = "google/protobuf/struct.proto"

_F = descriptor_pb2.FieldDescriptorProto
SCALARS = {"int": _F.TYPE_INT64, "float": _F.TYPE_DOUBLE, "str": _F.TYPE_STRING,
           "bool": _F.TYPE_BOOL, "bytes": _F.TYPE_BYTES}
WELL_KNOWN = {"any": ".google.protobuf.Value", "list": ".google.protobuf.ListValue",
              "dict": ".google.protobuf.Struct"}
SCALAR_NAMES = {_F.TYPE_INT64: "int64", _F.TYPE_UINT64: "uint64", _F.TYPE_DOUBLE: "double",
                _F.TYPE_STRING: "string", _F.TYPE_BOOL: "bool", _F.TYPE_BYTES: "bytes"}


def package_of(node: str) -> str:
    """The protobuf package part of a node's routes' key: `my-node` -> `my_node`, `2d` ->
    `_2d`; a project's node `my-team.adder` -> `my_team.adder` (each name alike)."""
    return ".".join(_identifier(name) for name in node.split("."))


def node_of(package: str) -> str:
    """The routes' key a package part names (names have no `_`, so this is exact)."""
    return ".".join(_name(part) for part in package.split("."))


def _identifier(name: str) -> str:
    name = name.replace("-", "_")
    return "_" + name if name[:1].isdigit() else name


def _name(part: str) -> str:
    return part[1:].replace("_", "-") if part[:1] == "_" and part[1:2].isdigit() \
        else part.replace("_", "-")


def service_name(node: str) -> str:
    return f"{PACKAGE_PREFIX}{package_of(node)}.{SERVICE}"


def file_name(node: str) -> str:
    return f"{FILE_PREFIX}{package_of(node)}.proto"


def normalized(kind: Type) -> Type:
    """`Optional[Optional[T]]` is `Optional[T]`; `Optional[any]` is `any` (a Value holds null)."""
    while kind.kind == "optional" and kind.item.kind in ("optional", "any"):  # type: ignore[union-attr]
        kind = kind.item  # type: ignore[assignment]
    return kind


def slot(kind: Type) -> str:
    """How a value of `kind` sits in a field: scalar, message, repeated or map."""
    k = kind.kind
    if k in SCALARS:
        return "scalar"
    if (k == "list" and kind.item is not None) or k == "dataframe":
        return "repeated"
    if k == "dict" and kind.item is not None:
        return "map"
    return "message"  # file, any, list, dict, ndarray, and Optional of a message


def wrapped_field(kind: Type) -> bool:
    """An Optional list, map or DataFrame: a message around it gives it presence."""
    return kind.kind == "optional" and slot(kind.item) in ("repeated", "map")  # type: ignore[arg-type]


def wrapped_item(kind: Type) -> bool:
    """A list item or map value that needs a message around it."""
    return kind.kind == "optional" or slot(kind) in ("repeated", "map")


def column_field(dtype: str) -> tuple[int, str | None]:
    """The protobuf type of a DataFrame column."""
    if dtype == "str":
        return _F.TYPE_STRING, None
    if dtype == "any":
        return _F.TYPE_MESSAGE, WELL_KNOWN["any"]
    kind = DTYPES[dtype][1]
    if kind == "int":
        return (_F.TYPE_UINT64 if dtype.startswith("u") else _F.TYPE_INT64), None
    return (_F.TYPE_DOUBLE if kind == "float" else _F.TYPE_BOOL), None


def camel(name: str) -> str:
    """protoc's CamelCase of a field name (map entries must be named so)."""
    return re.sub(r"_+([a-zA-Z0-9])", lambda m: m.group(1).upper(), name[:1].upper() + name[1:])


def column_names(columns: tuple[tuple[str, str], ...]) -> list[tuple[str, str, str]]:
    """(column, field name, dtype): a column name that is not an identifier is made one."""
    used: set[str] = set()
    out = []
    for column, dtype in columns:
        name = re.sub(r"\W", "_", column)
        while name in used:
            name += "_"
        used.add(name)
        out.append((column, name, dtype))
    return out


class _Builder:
    """Adds fields, and the nested messages they need, to a FileDescriptorProto."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.shared: set[str] = set()  # File, NDArray: added to the file when used
        self.comments: dict[str, str] = {}  # "Input.x" -> the declared type

    def field(self, msg: descriptor_pb2.DescriptorProto, scope: str, name: str, number: int,
              kind: Type, json_name: str | None = None) -> None:
        kind = normalized(kind)
        proto = msg.field.add(name=name, number=number, label=_F.LABEL_OPTIONAL)
        if json_name is not None and json_name != name:
            proto.json_name = json_name
        if kind.kind == "optional" and not wrapped_field(kind):
            kind = kind.item  # type: ignore[assignment]
            if slot(kind) == "scalar":
                proto.proto3_optional = True
                proto.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.add(name="_" + name)
        where = slot(kind)
        if where == "repeated":
            proto.label = _F.LABEL_REPEATED
            if kind.kind == "dataframe":
                self._rows(msg, scope, proto, kind)
            else:
                self._item(msg, scope, proto, kind.item, camel(name) + "Item")  # type: ignore[arg-type]
        elif where == "map":
            proto.label = _F.LABEL_REPEATED
            entry = msg.nested_type.add(name=camel(name) + "Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
            value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
            self._item(msg, scope, value, kind.item, camel(name) + "Value")  # type: ignore[arg-type]
            proto.type, proto.type_name = _F.TYPE_MESSAGE, f"{scope}.{entry.name}"
        elif kind.kind == "optional":  # wrapped: an Optional list, map or DataFrame
            self._wrapper(msg, scope, proto, kind.item, camel(name) + "Value")  # type: ignore[arg-type]
        else:
            self._single(proto, kind)

    def _single(self, proto: descriptor_pb2.FieldDescriptorProto, kind: Type) -> None:
        """A scalar or a message that stands for the value itself."""
        if kind.kind in SCALARS:
            proto.type = SCALARS[kind.kind]
            return
        proto.type = _F.TYPE_MESSAGE
        if kind.kind in WELL_KNOWN:
            proto.type_name = WELL_KNOWN[kind.kind]
        else:
            shared = "NDArray" if kind.kind == "ndarray" else "File"
            self.shared.add(shared)
            proto.type_name = f".{self.package}.{shared}"

    def _item(self, msg: descriptor_pb2.DescriptorProto, scope: str,
              proto: descriptor_pb2.FieldDescriptorProto, kind: Type, base: str) -> None:
        kind = normalized(kind)
        if wrapped_item(kind):
            self._wrapper(msg, scope, proto, kind, base)
        else:
            self._single(proto, kind)

    def _nested(self, msg: descriptor_pb2.DescriptorProto, base: str
                ) -> descriptor_pb2.DescriptorProto:
        used = {m.name for m in msg.nested_type}
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}{n}"
        return msg.nested_type.add(name=name)

    def _wrapper(self, msg: descriptor_pb2.DescriptorProto, scope: str,
                 proto: descriptor_pb2.FieldDescriptorProto, kind: Type, base: str) -> None:
        wrapper = self._nested(msg, base)
        inner = f"{scope}.{wrapper.name}"
        self.field(wrapper, inner, "value", 1, kind)
        proto.type, proto.type_name = _F.TYPE_MESSAGE, inner

    def _rows(self, msg: descriptor_pb2.DescriptorProto, scope: str,
              proto: descriptor_pb2.FieldDescriptorProto, kind: Type) -> None:
        proto.type = _F.TYPE_MESSAGE
        if not kind.columns:
            proto.type_name = WELL_KNOWN["dict"]
            return
        row = self._nested(msg, camel(proto.name) + "Row")
        for number, (column, name, dtype) in enumerate(column_names(kind.columns), 1):
            kind_of, type_name = column_field(dtype)
            column_proto = row.field.add(name=name, number=number, type=kind_of,
                                         label=_F.LABEL_OPTIONAL)
            if column != name:
                column_proto.json_name = column
            if type_name:
                column_proto.type_name = type_name
            else:  # nullable: absent is null (NaN, None)
                column_proto.proto3_optional = True
                column_proto.oneof_index = len(row.oneof_decl)
                row.oneof_decl.add(name="_" + name)
            self.comments[f"{scope[len(self.package) + 2:]}.{row.name}.{name}"] = dtype
        proto.type_name = f"{scope}.{row.name}"


def _shared_messages(file: descriptor_pb2.FileDescriptorProto, shared: set[str]) -> None:
    if "File" in shared:
        msg = file.message_type.add(name="File")
        for number, name in enumerate(("filename", "content_type"), 1):
            msg.field.add(name=name, number=number, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL,
                          proto3_optional=True, oneof_index=number - 1)
            msg.oneof_decl.add(name="_" + name)
        msg.field.add(name="data", number=3, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    if "NDArray" in shared:
        msg = file.message_type.add(name="NDArray")
        msg.field.add(name="dtype", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        msg.field.add(name="shape", number=2, type=_F.TYPE_INT64, label=_F.LABEL_REPEATED)
        msg.field.add(name="data", number=3, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)


def _uses_struct(msg: descriptor_pb2.DescriptorProto) -> bool:
    return any(f.type_name.startswith(".google.protobuf.") for f in msg.field) or any(
        _uses_struct(m) for m in msg.nested_type)


@dataclass
class NodeSchema:
    """A node's typed service: descriptors, message classes, and the fields to transcode."""

    node: str
    checkpoint: str
    file: descriptor_pb2.FileDescriptorProto
    pool: descriptor_pool.DescriptorPool
    inputs: list[tuple[str, Type]]
    outputs: list[tuple[str, Type]]
    comments: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        package = self.file.package
        self.input_class: Any = message_factory.GetMessageClass(
            self.pool.FindMessageTypeByName(f"{package}.Input"))
        self.output_class: Any = message_factory.GetMessageClass(
            self.pool.FindMessageTypeByName(f"{package}.Output"))

    @property
    def service(self) -> str:
        return f"{self.file.package}.{SERVICE}"

    def text(self) -> str:
        """The .proto source, for clients that generate code."""
        header = (f"// The typed gRPC service of node {self.node!r} (checkpoint {self.checkpoint}),\n"
                  "// made by jupyter_deploy from the checkpoint's declared inputs and outputs.\n"
                  f"// Call {self.service}/{METHOD} on the gateway's gRPC port with\n"
                  "// `authorization: Bearer <node key>` metadata.\n")
        return render(self.file, self.comments, header)


# -- the .proto text ----------------------------------------------------------------------

def render(file: descriptor_pb2.FileDescriptorProto, comments: dict[str, str] | None = None,
           header: str = "") -> str:
    """The .proto source of a file built here (messages, maps, proto3 optional, services)."""
    lines = [header + f'syntax = "{file.syntax or "proto3"}";', "", f"package {file.package};", ""]
    lines += [f'import "{name}";' for name in file.dependency]
    if file.dependency:
        lines.append("")
    for service in file.service:
        lines.append(f"service {service.name} {{")
        lines += [f"  rpc {m.name}({_type_ref(file, m.input_type)}) returns "
                  f"({_type_ref(file, m.output_type)});" for m in service.method]
        lines += ["}", ""]
    for message in file.message_type:
        _render_message(file, message, message.name, comments or {}, lines, "")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _render_message(file: descriptor_pb2.FileDescriptorProto, msg: descriptor_pb2.DescriptorProto,
                    path: str, comments: dict[str, str], lines: list[str], indent: str) -> None:
    lines.append(f"{indent}message {msg.name} {{")
    entries = {f"{m.name}": m for m in msg.nested_type if m.options.map_entry}
    for nested in msg.nested_type:
        if not nested.options.map_entry:
            _render_message(file, nested, f"{path}.{nested.name}", comments, lines, indent + "  ")
    for f in msg.field:
        entry = entries.get(f.type_name.rsplit(".", 1)[-1]) if f.type_name else None
        if entry is not None and f.label == _F.LABEL_REPEATED:
            value = entry.field[1]
            kind = f"map<string, {_field_type(file, value)}>"
        else:
            label = "repeated " if f.label == _F.LABEL_REPEATED else (
                "optional " if f.proto3_optional else "")
            kind = label + _field_type(file, f)
        option = f' [json_name = "{f.json_name}"]' if f.json_name else ""
        note = comments.get(f"{path}.{f.name}")
        lines.append(f"{indent}  {kind} {f.name} = {f.number}{option};"
                     + (f"  // {note}" if note else ""))
    lines.append(f"{indent}}}")


def _field_type(file: descriptor_pb2.FileDescriptorProto,
                f: descriptor_pb2.FieldDescriptorProto) -> str:
    return SCALAR_NAMES[f.type] if f.type in SCALAR_NAMES else _type_ref(file, f.type_name)


def _type_ref(file: descriptor_pb2.FileDescriptorProto, full_name: str) -> str:
    own = f".{file.package}."
    return full_name[len(own):] if full_name.startswith(own) else full_name.lstrip(".")


def build_schema(node: str, checkpoint: str, inputs: list[dict[str, str]],
                 outputs: list[dict[str, str]]) -> NodeSchema:
    """The descriptors of a node's service, in a pool of their own."""
    package = PACKAGE_PREFIX + package_of(node)
    file = descriptor_pb2.FileDescriptorProto(name=file_name(node), package=package,
                                              syntax="proto3")
    builder = _Builder(package)
    fields = {}
    for message, declared in (("Input", inputs), ("Output", outputs)):
        msg = file.message_type.add(name=message)
        kinds = [(f["name"], parse_type(f["type"])) for f in declared]
        for number, (name, kind) in enumerate(kinds, 1):
            builder.field(msg, f".{package}.{message}", name, number, kind)
            builder.comments[f"{message}.{name}"] = str(kind)
        fields[message] = kinds
    _shared_messages(file, builder.shared)
    if any(_uses_struct(m) for m in file.message_type):
        file.dependency.append(STRUCT_FILE)
    method = file.service.add(name=SERVICE).method.add(name=METHOD)
    method.input_type, method.output_type = f".{package}.Input", f".{package}.Output"
    pool = descriptor_pool.DescriptorPool()
    struct_file = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct_file)
    pool.Add(struct_file)
    pool.Add(file)
    return NodeSchema(node, checkpoint, file, pool, fields["Input"], fields["Output"],
                      builder.comments)


class Schemas:
    """Each node's schema, made when first asked for and kept while its checkpoint is the same."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._cache: OrderedDict[tuple[str, str], NodeSchema] = OrderedDict()

    def get(self, node: str, checkpoint_id: str, ref: str, fields: dict[str, Any]) -> NodeSchema:
        """`fields`: the checkpoint's `inputs` and `outputs`; `ref`: its NAME@VERSION."""
        key = (node, checkpoint_id)
        schema = self._cache.get(key)
        if schema is None:
            schema = build_schema(node, ref, fields["inputs"], fields["outputs"])
            self._cache[key] = schema
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return schema
