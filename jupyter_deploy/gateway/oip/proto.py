"""The messages of `inference.GRPCInferenceService` (KServe's grpc_predict_v2.proto, as
Triton serves it), built at run time in a descriptor pool of their own.

Only what the gateway serves is declared (ServerLive, ServerReady, ServerMetadata,
ModelReady, ModelMetadata, ModelInfer); field numbers are the published ones, so any
client generated from the published .proto talks to it.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"
_F = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT64, INT32 = _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_INT64, _F.TYPE_INT32
UINT32, UINT64, FLOAT, DOUBLE = _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_FLOAT, _F.TYPE_DOUBLE
BYTES, MESSAGE = _F.TYPE_BYTES, _F.TYPE_MESSAGE
REPEATED = "repeated"
PARAMETERS = "map"  # map<string, InferParameter>
# message -> its fields: (name, number, type, "repeated"/"map"/"", message type)
Fields = list[tuple[str, int, int, str, str]]
# an input or output tensor: InferInputTensor and InferOutputTensor are alike
TENSOR: Fields = [
    ("name", 1, STRING, "", ""), ("datatype", 2, STRING, "", ""),
    ("shape", 3, INT64, REPEATED, ""), ("parameters", 4, MESSAGE, PARAMETERS, ""),
    ("contents", 5, MESSAGE, "", "InferTensorContents")]
MESSAGES: dict[str, Fields] = {
    "ServerLiveRequest": [], "ServerLiveResponse": [("live", 1, BOOL, "", "")],
    "ServerReadyRequest": [], "ServerReadyResponse": [("ready", 1, BOOL, "", "")],
    "ModelReadyRequest": [("name", 1, STRING, "", ""), ("version", 2, STRING, "", "")],
    "ModelReadyResponse": [("ready", 1, BOOL, "", "")],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [("name", 1, STRING, "", ""), ("version", 2, STRING, "", ""),
                               ("extensions", 3, STRING, REPEATED, "")],
    "ModelMetadataRequest": [("name", 1, STRING, "", ""), ("version", 2, STRING, "", "")],
    "ModelMetadataResponse": [
        ("name", 1, STRING, "", ""), ("versions", 2, STRING, REPEATED, ""),
        ("platform", 3, STRING, "", ""),
        ("inputs", 4, MESSAGE, REPEATED, "ModelMetadataResponse.TensorMetadata"),
        ("outputs", 5, MESSAGE, REPEATED, "ModelMetadataResponse.TensorMetadata")],
    "ModelMetadataResponse.TensorMetadata": [
        ("name", 1, STRING, "", ""), ("datatype", 2, STRING, "", ""),
        ("shape", 3, INT64, REPEATED, "")],
    "ModelInferRequest": [
        ("model_name", 1, STRING, "", ""), ("model_version", 2, STRING, "", ""),
        ("id", 3, STRING, "", ""), ("parameters", 4, MESSAGE, PARAMETERS, ""),
        ("inputs", 5, MESSAGE, REPEATED, "ModelInferRequest.InferInputTensor"),
        ("outputs", 6, MESSAGE, REPEATED, "ModelInferRequest.InferRequestedOutputTensor"),
        ("raw_input_contents", 7, BYTES, REPEATED, "")],
    "ModelInferRequest.InferInputTensor": TENSOR,
    "ModelInferRequest.InferRequestedOutputTensor": [
        ("name", 1, STRING, "", ""), ("parameters", 2, MESSAGE, PARAMETERS, "")],
    "ModelInferResponse": [
        ("model_name", 1, STRING, "", ""), ("model_version", 2, STRING, "", ""),
        ("id", 3, STRING, "", ""), ("parameters", 4, MESSAGE, PARAMETERS, ""),
        ("outputs", 5, MESSAGE, REPEATED, "ModelInferResponse.InferOutputTensor"),
        ("raw_output_contents", 6, BYTES, REPEATED, "")],
    "ModelInferResponse.InferOutputTensor": TENSOR,
    "InferTensorContents": [
        ("bool_contents", 1, BOOL, REPEATED, ""), ("int_contents", 2, INT32, REPEATED, ""),
        ("int64_contents", 3, INT64, REPEATED, ""), ("uint_contents", 4, UINT32, REPEATED, ""),
        ("uint64_contents", 5, UINT64, REPEATED, ""), ("fp32_contents", 6, FLOAT, REPEATED, ""),
        ("fp64_contents", 7, DOUBLE, REPEATED, ""), ("bytes_contents", 8, BYTES, REPEATED, "")],
}
# InferParameter's oneof parameter_choice
CHOICES = [("bool_param", 1, BOOL), ("int64_param", 2, INT64), ("string_param", 3, STRING),
           ("double_param", 4, DOUBLE), ("uint64_param", 5, UINT64)]
METHODS = ("ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata",
           "ModelInfer")
# datatype -> the InferTensorContents field that carries it (FP16 only travels raw)
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _add(file: descriptor_pb2.FileDescriptorProto, path: str, fields: Fields) -> None:
    outer, _, inner = path.partition(".")
    holder = next(m for m in file.message_type if m.name == outer) if inner else None
    msg = holder.nested_type.add(name=inner) if holder is not None else file.message_type.add(
        name=outer)
    for name, number, kind, label, type_name in fields:
        field = msg.field.add(name=name, number=number, type=kind,
                              label=_F.LABEL_REPEATED if label else _F.LABEL_OPTIONAL)
        if label == PARAMETERS:
            entry = msg.nested_type.add(name="ParametersEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=STRING, label=_F.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=MESSAGE, label=_F.LABEL_OPTIONAL,
                            type_name=f".{PACKAGE}.InferParameter")
            field.type_name = f".{PACKAGE}.{path}.ParametersEntry"
        elif type_name:
            field.type_name = f".{PACKAGE}.{type_name}"


def build() -> dict[str, Any]:
    """The message classes, by name (`ModelInferRequest.InferInputTensor` for nested ones)."""
    file = descriptor_pb2.FileDescriptorProto(name="jupyter_deploy/oip/grpc_predict_v2.proto",
                                              package=PACKAGE, syntax="proto3")
    parameter = file.message_type.add(name="InferParameter")
    parameter.oneof_decl.add(name="parameter_choice")
    for name, number, kind in CHOICES:
        parameter.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL,
                            oneof_index=0)
    for path, fields in MESSAGES.items():
        _add(file, path, fields)
    service = file.service.add(name=SERVICE.rsplit(".", 1)[1])
    for method in METHODS:
        service.method.add(name=method, input_type=f".{PACKAGE}.{method}Request",
                           output_type=f".{PACKAGE}.{method}Response")
    pool = descriptor_pool.DescriptorPool()  # its own: tritonclient's may share a process
    pool.Add(file)
    return {path: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{PACKAGE}.{path}")) for path in ["InferParameter", *MESSAGES]}


CLASSES = build()
