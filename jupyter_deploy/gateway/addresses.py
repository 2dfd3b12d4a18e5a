"""How callers name a project's node or alias (issue 19) and the routes' key of it."""

from __future__ import annotations

from ..http.messages import Response
from ..store.projects import DEFAULT_PROJECT  # whose nodes single-segment paths name


def route_key(project: str | None, name: str) -> str:
    """The routes' key of a project's node or alias (issue 19): its name in the default
    project, `project.name` in the others."""
    return name if not project or project == DEFAULT_PROJECT else f"{project}.{name}"


def public_name(key: str) -> str:
    """A routes' key as callers name it: `NAME`, or `PROJECT/NAME` (paths and headers)."""
    return key.replace(".", "/", 1)


def answered_as_called(response: Response) -> Response:
    """The answer with the node an alias picked (`x-node-id`) named as callers name it."""
    node = (response.headers or {}).get("x-node-id")
    if node is not None and "." in node:
        response.headers = {**(response.headers or {}), "x-node-id": public_name(node)}
    return response


def header_key(value: str) -> str:
    """The routes' key named by `x-node-id` / `x-node-alias`: `NAME` or `PROJECT/NAME`."""
    if "/" not in value:
        return value
    project, _, name = value.partition("/")
    return route_key(project, name)
