"""Checking a checkpoint as a kernel sends it."""

from __future__ import annotations

from typing import Any

from ...models import InvalidInput
from ...types import check_fields
from .names import body_object, check_name

BODY_TYPES = (("source", str), ("environment", dict), ("state", list), ("example", dict),
              ("data", str))


def checkpoint_spec(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the content address covers, with the pickled state; the rest of the metadata)."""
    body = body_object(body)
    check_name(body.get("name"), "name")
    for key, kind in BODY_TYPES:
        if not isinstance(body.get(key), kind):
            raise InvalidInput(f"{key} must be a {kind.__name__}", field=key)
    if not body["data"].isascii():  # the base64 decoder takes no other text
        raise InvalidInput("data must be base64", field="data")
    spec = {
        "source": body["source"],
        "inputs": check_fields(body.get("inputs", []), "inputs"),
        "outputs": check_fields(body.get("outputs", []), "outputs"),
        "environment": body["environment"],
    }
    batch = body.get("batch", False)
    if not isinstance(batch, bool):
        raise InvalidInput("batch must be true or false", field="batch")
    if batch:  # left out when false: a cell pinned before batching keeps its content address
        spec["batch"] = True
    extra = {"name": body["name"], "state": body["state"], "example": body["example"]}
    return spec, extra
