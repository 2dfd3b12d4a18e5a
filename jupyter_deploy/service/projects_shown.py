"""What the control API shows of a project's checkpoints, nodes, aliases and events: its
`project` and each `name` apart, never the internal key (see projects.py)."""

from __future__ import annotations

from typing import Any

from ..store.projects import DEFAULT_PROJECT
from .projects import node_key, split_key


def short(key: str | None) -> str | None:
    """A key (or `key@version`) as the project's members name it."""
    return None if key is None else split_key(key)[1]


def public_paths(text: str, project: str) -> str:
    """Gateway paths and headers of a project's keys written as `project/name`."""
    if project == DEFAULT_PROJECT:
        return text
    for prefix in ("/v1/nodes/", "/v1/aliases/", "x-node-id: ", "x-node-alias: "):
        text = text.replace(f"{prefix}{project}.", f"{prefix}{project}/")
    return text


def node(data: dict[str, Any], project: str) -> dict[str, Any]:
    """A node of the project."""
    shown = {**data, "project": project, "name": short(data["name"]),
             "checkpoint": short(data.get("checkpoint"))}
    if "endpoint" in data:
        shown["endpoint"] = public_paths(data["endpoint"], project)
    if "instances" in data:
        shown["instances"] = [{**i, "node": short(i.get("node"))} for i in data["instances"]]
    return shown


def alias(data: dict[str, Any], project: str) -> dict[str, Any]:
    """An alias of the project."""
    shown = {**data, "project": project, "name": short(data["name"]),
             "nodes": {short(key): weight for key, weight in data["nodes"].items()}}
    if data.get("shadow"):
        shown["shadow"] = {**data["shadow"], "node": short(data["shadow"]["node"])}
    if "routing" in data:
        shown["routing"] = [{**r, "node": short(r["node"])} for r in data["routing"]]
    if "endpoint" in data:
        shown["endpoint"] = public_paths(data["endpoint"], project)
    return shown


def checkpoint(data: dict[str, Any], project: str) -> dict[str, Any]:
    """A checkpoint version of the project."""
    return {**data, "project": project, "name": short(data["name"])}


def text(message: str, project: str) -> str:
    """A message about the project's keys, naming them as its members do."""
    return message if project == DEFAULT_PROJECT else message.replace(node_key(project, ""), "")


def event(data: dict[str, Any], project: str) -> dict[str, Any]:
    """An event about one of the project's checkpoints, nodes or aliases."""
    return {**data, "project": project, "node": short(data.get("node")),
            "subject": short(data.get("subject")), "message": text(data.get("message") or "",
                                                                   project)}


def examples(data: Any, project: str) -> Any:
    """Ready-to-paste calls, with the project's paths."""
    if isinstance(data, str):
        return public_paths(data, project)
    if isinstance(data, dict):
        return {k: examples(v, project) for k, v in data.items()}
    if isinstance(data, list):
        return [examples(v, project) for v in data]
    return data
