"""Parsing a control-API request body: any bytes give a JSON value or a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from ...models import BadRequest

MAX_DEPTH = 32  # no setting nests deeper than a few levels


def _no_constant(name: str) -> Any:
    raise BadRequest(f"the body is not valid JSON: {name} is not a JSON number", field="body")


def parse_body(raw: bytes) -> Any:
    """The JSON value of `raw` (None when empty): at most MAX_DEPTH levels deep, finite
    numbers, strings that are valid Unicode; else BadRequest naming the body."""
    try:
        value = json.loads(raw or b"null", parse_constant=_no_constant)
    except RecursionError:  # deeper than the parser goes: far past MAX_DEPTH
        raise BadRequest(f"the body nests more than {MAX_DEPTH} levels deep",
                         field="body") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", field="body") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """Walk the value without recursion: its depth, and every string (keys too)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadRequest(f"the body nests more than {MAX_DEPTH} levels deep",
                                 field="body")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)


def _check_string(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (\ud800): no file or database takes it
        raise BadRequest("the body holds a string that is not valid Unicode (a lone "
                         "surrogate such as \\ud800)", field="body") from None
