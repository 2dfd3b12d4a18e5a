"""Declared inputs and outputs of a checkpoint: parsing, JSON Schema and validation.

Kept free of heavy imports: the gateway validates every request with it, and the worker
imports it at start-up.
"""

from __future__ import annotations

import re
from typing import Any

from .models import InvalidInput

# type name -> (JSON Schema, check on a decoded JSON value)
TYPES: dict[str, tuple[dict[str, Any], Any]] = {
    "int": ({"type": "integer"}, lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": (
        {"type": "number"},
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    ),
    "str": ({"type": "string"}, lambda v: isinstance(v, str)),
    "bool": ({"type": "boolean"}, lambda v: isinstance(v, bool)),
    "list": ({"type": "array"}, lambda v: isinstance(v, list)),
    "dict": ({"type": "object"}, lambda v: isinstance(v, dict)),
    "any": ({}, lambda v: True),
}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_fields(spec: str, option: str) -> list[dict[str, str]]:
    """Parse `a:float,b` into [{"name": "a", "type": "float"}, {"name": "b", "type": "any"}]."""
    fields: list[dict[str, str]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, type_name = part.partition(":")
        name, type_name = name.strip(), (type_name.strip() or "any")
        if not IDENTIFIER.match(name):
            raise InvalidInput(f"{option}: {name!r} is not a Python identifier", field=option)
        if type_name not in TYPES:
            known = ", ".join(TYPES)
            raise InvalidInput(
                f"{option}: unknown type {type_name!r} for {name!r} (known: {known})",
                field=option,
            )
        if any(f["name"] == name for f in fields):
            raise InvalidInput(f"{option}: {name!r} is declared twice", field=option)
        fields.append({"name": name, "type": type_name})
    return fields


def check_fields(value: Any, option: str) -> list[dict[str, str]]:
    """Validate fields given as JSON (a list of {name, type}) and return them."""
    if not isinstance(value, list):
        raise InvalidInput(f"{option} must be a list of {{name, type}}", field=option)
    spec = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput(f"{option}[{i}] must be {{name, type}}", field=f"{option}[{i}]")
        spec.append(f"{item['name']}:{item.get('type', 'any')}")
    return parse_fields(",".join(spec), option)


def input_errors(fields: list[dict[str, str]], payload: Any) -> list[dict[str, str]]:
    """Every problem with a request body `{"input": {...}}`, each with its JSON path."""
    if not isinstance(payload, dict) or not isinstance(payload.get("input"), dict):
        return [{"field": "input", "message": 'the body must be {"input": {...}}'}]
    values = payload["input"]
    errors = []
    for f in fields:
        name, type_name = f["name"], f["type"]
        if name not in values:
            errors.append({"field": f"input.{name}", "message": f"missing {type_name} input"})
        elif not TYPES[type_name][1](values[name]):
            got = type(values[name]).__name__ if values[name] is not None else "null"
            errors.append(
                {"field": f"input.{name}", "message": f"expected {type_name}, got {got}"}
            )
    declared = {f["name"] for f in fields}
    for name in values:
        if name not in declared:
            errors.append({"field": f"input.{name}", "message": "not a declared input"})
    return errors


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for numpy scalars and arrays (anything with `tolist`)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def invalid_input_body(errors: list[dict[str, str]]) -> dict[str, Any]:
    """The 422 body: the first failing field, and all of them."""
    first = errors[0]
    return {
        "error": {
            "code": "invalid_input",
            "message": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            "field": first["field"],
            "errors": errors,
        }
    }
