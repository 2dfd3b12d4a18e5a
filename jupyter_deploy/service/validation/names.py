"""The small rules every other one is made of: names, variables, numbers, flags, bodies."""

from __future__ import annotations

import re
from typing import Any

from ...models import InvalidInput
from .ranges import MAX_VARIABLE_NAME, MAX_VARIABLE_VALUE, MAX_VARIABLES, check_text
from .ranges import is_whole as is_whole

NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(value: Any, field: str) -> str:
    """Return `value` if it is a lowercase DNS label, else raise InvalidInput naming `field`."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidInput(
            f"{field} must be a lowercase DNS label (a-z, 0-9, '-', at most 63 characters, "
            f"starting and ending with a letter or digit), got {value!r}",
            field=field,
        )
    return value


def check_variables(value: Any, field: str) -> dict[str, str]:
    """Environment variables {NAME: value} a process can be given; InvalidInput naming the
    bad one (NUL bytes, sizes: ranges.MAX_VARIABLE_*)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object of NAME: value", field=field)
    if len(value) > MAX_VARIABLES:
        raise InvalidInput(f"{field} has {len(value)} variables: at most {MAX_VARIABLES}",
                           field=field)
    for name, item in value.items():
        check_text(name, f"{field}.{name}", MAX_VARIABLE_NAME)
        if not ENV_NAME.match(name) or not isinstance(item, str):
            raise InvalidInput(f"{field}.{name}: names are identifiers, values strings",
                               field=f"{field}.{name}")
        check_text(item, f"{field}.{name}", MAX_VARIABLE_VALUE)
    return dict(value)


def body_object(body: Any) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    """`body[name]` as true or false, `default` when absent."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value


def unknown_field(body: dict[str, Any], known: set[str], what: str) -> None:
    """Refuse the first field of `body` that is not in `known`."""
    unknown = set(body) - known
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"{field} is not {what}", field=field)
