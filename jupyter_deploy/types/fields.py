"""Declared inputs and outputs: parsing them, and checking request bodies against them."""

from __future__ import annotations

import ast
import re
from typing import Any

from ..models import InvalidInput
from .grammar import parse_type
from .kinds import CHECKS

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def split_top(text: str, separator: str = ",") -> list[str]:
    """Split at `separator` outside brackets: `a:ndarray[f4,(2,2)],b` -> 2 parts."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_fields(spec: str, option: str, annotations: dict[str, str] | None = None
                 ) -> list[dict[str, str]]:
    """Parse `a:float,b` into [{"name": "a", "type": "float"}, {"name": "b", "type": ...}].

    A field without a type takes the cell's annotation of that name, else `any`.
    """
    fields: list[dict[str, str]] = []
    for part in (p.strip() for p in split_top(spec)):
        if not part:
            continue
        name, _, type_name = part.partition(":")
        name, type_name = name.strip(), type_name.strip()
        if not IDENTIFIER.match(name):
            raise InvalidInput(f"{option}: {name!r} is not a Python identifier", field=option)
        if not type_name:
            type_name = (annotations or {}).get(name, "any")
        try:
            canonical = str(parse_type(type_name))
        except ValueError as exc:
            raise InvalidInput(f"{option}: the type of {name!r}, {type_name!r}: {exc}",
                               field=option) from None
        if any(f["name"] == name for f in fields):
            raise InvalidInput(f"{option}: {name!r} is declared twice", field=option)
        fields.append({"name": name, "type": canonical})
    return fields


def check_fields(value: Any, option: str) -> list[dict[str, str]]:
    """Validate fields given as JSON (a list of {name, type}) and return them."""
    if not isinstance(value, list):
        raise InvalidInput(f"{option} must be a list of {{name, type}}", field=option)
    spec = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("type", "any"), str):
            raise InvalidInput(f"{option}[{i}] must be {{name, type}}", field=f"{option}[{i}]")
        spec.append(f"{item['name']}:{item.get('type', 'any')}")
    return parse_fields(",".join(spec), option)


def cell_annotations(source: str) -> dict[str, str]:
    """Types the cell gives its own names (`x: np.ndarray`, `y: "DataFrame[a:int64]" = ...`),
    as this grammar spells them; annotations it cannot read are left out."""
    found: dict[str, str] = {}
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return found  # running the cell will show the error
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            note = node.annotation
            text = note.value if isinstance(note, ast.Constant) and isinstance(note.value, str) \
                else ast.unparse(note)
            try:
                found[node.target.id] = str(parse_type(text.replace("'", "").replace('"', "")))
            except ValueError:
                continue
    return found


class InputCheck:
    """Checks request bodies `{"input": {...}}` against declared inputs; built once per
    checkpoint, since the gateway runs it on every request."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = [(f["name"], parse_type(f["type"])) for f in fields]
        self.names = frozenset(name for name, _ in self.fields)
        # inputs checked by one predicate each: the common case, kept cheap
        simple = all(kind.kind in CHECKS and kind.kind != "any" for _, kind in self.fields)
        self.simple = [(name, CHECKS[kind.kind]) for name, kind in self.fields] \
            if simple else None

    def __call__(self, payload: Any) -> list[dict[str, str]]:
        """Every problem with the body, each with its JSON path; [] when it fits."""
        if not isinstance(payload, dict) or not isinstance(payload.get("input"), dict):
            return [{"field": "input", "message": 'the body must be {"input": {...}}'}]
        values = payload["input"]
        if self.simple is not None and len(values) == len(self.simple):
            try:
                if all(check(values[name]) for name, check in self.simple):
                    return []
            except KeyError:
                pass
        errors: list[dict[str, str]] = []
        for name, kind in self.fields:
            if name in values:
                kind.errors(values[name], f"input.{name}", errors)
            elif not kind.optional:
                what = "input" if kind.kind == "any" else f"{kind} input"
                errors.append({"field": f"input.{name}", "message": f"missing {what}"})
        errors.extend({"field": f"input.{name}", "message": "not a declared input"}
                      for name in values if name not in self.names)
        return errors


def input_errors(fields: list[dict[str, str]], payload: Any) -> list[dict[str, str]]:
    """Every problem with a request body `{"input": {...}}`, each with its JSON path."""
    return InputCheck(fields)(payload)


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
