"""How callers name a project's node or alias (issue 19) and the routes' key of it."""

from __future__ import annotations

from ..store.projects import DEFAULT_PROJECT  # whose nodes single-segment paths name


def route_key(project: str | None, name: str) -> str:
    """The routes' key of a project's node or alias (issue 19): its name in the default
    project, `project.name` in the others."""
    return name if not project or project == DEFAULT_PROJECT else f"{project}.{name}"


def header_key(value: str) -> str:
    """The routes' key named by `x-node-id` / `x-node-alias`: `NAME` or `PROJECT/NAME`."""
    if "/" not in value:
        return value
    project, _, name = value.partition("/")
    return route_key(project, name)
