"""OpenAPI 3.1 documents of nodes and aliases, and the page that browses them.

A document is built from the checkpoint's declared inputs and outputs, with the values the
notebook had at pin time as examples. Swagger UI comes from the `swagger-ui-py` package and
is served by the gateway itself: nothing is fetched from outside the machine.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
import mimetypes
from pathlib import Path
from typing import Any

from ..types import parse_type
from .addresses import public_name

STATIC_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string", "description": "JSON path of the field at fault"},
            "errors": {"type": "array", "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        },
        "required": ["code", "message"],
    }},
    "required": ["error"],
}
CELL_ERROR_SCHEMA = {
    "type": "object",
    "description": "The cell raised: its exception, with a traceback numbered as in the cell "
                   "for callers with a key (anonymous callers of a public alias get it only "
                   "when the node exposes it).",
    "properties": {"error_name": {"type": "string"}, "error_message": {"type": "string"},
                   "traceback": {"type": "array", "items": {"type": "string"}}},
    "required": ["error_name", "error_message"],
}
ENCODINGS = """\
JSON encodings: `bytes` as base64 text; `file` as base64 or `{"filename", "content_type",
"data"}`; numpy arrays as nested lists or `{"dtype", "shape", "data"}` with the raw
little-endian bytes in base64 (send `x-array-encoding: base64` to get array outputs that way);
DataFrames as records, one object per row; NaN and infinities as null."""


def base_path(kind: str, name: str) -> str:
    """Where the gateway serves node or alias `name`: `/v1/nodes/NAME` or `/v1/aliases/NAME`
    (`.../PROJECT/NAME` in a project other than the default)."""
    return f"/v1/{'nodes' if kind == 'node' else 'aliases'}/{public_name(name)}"


def _fields_schema(fields: list[dict[str, str]]) -> dict[str, Any]:
    kinds = {f["name"]: parse_type(f["type"]) for f in fields}
    return {
        "type": "object",
        "properties": {name: {**kind.schema(), "x-type": str(kind)}
                       for name, kind in kinds.items()},
        "required": [name for name, kind in kinds.items() if not kind.optional],
        "additionalProperties": False,
    }


def _error(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _responses(kind: str, public: bool, answer_content: dict[str, Any]) -> dict[str, Any]:
    """The answers an execute call may get, by status."""
    responses: dict[str, Any] = {
        "200": {"description": "The cell's outputs.",
                "headers": {"x-instance-id": {"description": "The instance that ran the cell.",
                                              "schema": {"type": "string"}}},
                "content": {"application/json": answer_content}},
        "400": _error("The body is not JSON, or `x-array-encoding` is not one of its values "
                      "(`field` names it)."),
        "404": _error(f"No such {kind}."),
        "413": _error("The request is over 16 MB."),
        "422": _error("Inputs that do not fit their types: each failing field with its path."),
        "500": {"description": "The cell raised (its error and traceback), or an output does "
                               "not have its declared type (`invalid_output`).",
                "content": {"application/json": {"schema": {"anyOf": [
                    {"$ref": "#/components/schemas/CellError"},
                    {"$ref": "#/components/schemas/Error"}]}}}},
        "502": _error("The instance failed, or its answer is over 16 MB."),
        "429": {**_error(f"The {kind}'s queue is full: retry after `Retry-After` seconds."),
                "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        "503": {**_error(f"The {kind} has no healthy instance right now."),
                "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        "504": _error("The cell did not finish within the request timeout, or the request "
                      "waited in the queue past it (then it was not run)."),
    }
    if not public:
        responses["401"] = _error("No key was sent.")
        responses["403"] = _error(f"The key does not open this {kind}.")
    return responses


def document(kind: str, name: str, checkpoint: dict[str, Any], server: str,
             public: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document of node or alias `name` serving `checkpoint`."""
    example = checkpoint.get("example") or {}
    request = {"type": "object", "properties": {"input": _fields_schema(checkpoint["inputs"])},
               "required": ["input"]}
    answer = {"type": "object", "properties": {"output": _fields_schema(checkpoint["outputs"])},
              "required": ["output"]}
    request_content: dict[str, Any] = {"schema": request}
    if example.get("input") is not None:
        request_content["example"] = {"input": example["input"]}
    answer_content: dict[str, Any] = {"schema": answer}
    if example.get("output") is not None:
        answer_content["example"] = {"output": example["output"]}
    responses = _responses(kind, public, answer_content)
    operation = {
        "operationId": f"execute_{name.replace('-', '_')}",
        "summary": f"Run the cell of checkpoint {checkpoint['ref']}",
        "description": f"```python\n{checkpoint['source'].rstrip()}\n```\n\n{ENCODINGS}",
        "parameters": [{
            "name": "x-array-encoding", "in": "header", "required": False,
            "description": "How array outputs are sent: nested lists (default) or base64.",
            "schema": {"type": "string", "enum": ["list", "base64"]},
        }],
        "requestBody": {"required": True, "content": {"application/json": request_content}},
        "responses": dict(sorted(responses.items())),
        "security": [] if public else [{"bearer": []}],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{kind} {public_name(name)}",
            "version": checkpoint["ref"],
            "description": f"Served by jupyter_deploy from checkpoint {checkpoint['ref']}. "
                           "The same call: `POST /` with the header `"
                           f"{'x-node-id' if kind == 'node' else 'x-node-alias'}: "
                           f"{public_name(name)}`.",
        },
        "servers": [{"url": server}],
        "paths": {f"{base_path(kind, name)}:execute": {"post": operation}},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": f"The {kind}'s key."}},
            "schemas": {"Error": ERROR_SCHEMA, "CellError": CELL_ERROR_SCHEMA},
        },
    }


def docs_page(kind: str, name: str) -> bytes:
    """A Swagger UI page for the document next to it (`openapi.json`)."""
    title = html.escape(f"{kind} {name} · jupyter_deploy")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="/v1/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/v1/docs/static/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/v1/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: {json.dumps(f"{base_path(kind, name)}/openapi.json")},
  dom_id: "#docs", deepLinking: true, tryItOutEnabled: true}});</script>
</body></html>
""".encode()


@functools.lru_cache(maxsize=len(STATIC_FILES))
def static_file(name: str) -> tuple[bytes, str] | None:
    """One of Swagger UI's files and its content type; None for any other name."""
    if name not in STATIC_FILES:
        return None
    spec = importlib.util.find_spec("swagger_ui")  # its files, without importing its web glue
    path = Path(spec.origin).parent / "static" / name  # type: ignore[union-attr, arg-type]
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return path.read_bytes(), kind
