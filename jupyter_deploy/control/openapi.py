"""The OpenAPI 3.1 document of the control API, served at /deploy/api/openapi.json.

Every route of the extension's handler table is here, and only those: a test compares the two,
and checks real answers against these schemas.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from .handlers.logs import MAX_TAIL_BYTES
from .handlers.requests import MAX_LAST
from .openapi_projects import PROJECT_QUERY, PROJECT_SCHEMAS, project_paths
from .schemas import NAME, NUMBER, REQUEST_ID_PATTERN, SCHEMAS, Schema, nullable, obj, ref

API = "/deploy/api"
MAX_WAIT_S = 60  # the longest long poll of GET /events
JSON = "application/json"
ERRORS = {"4XX": {"description": "refused: the error names the field when one is at fault",
                  "content": {JSON: {"schema": ref("Error")}}},
          "503": {"description": "the deploy service is not running",
                  "content": {JSON: {"schema": ref("Error")}}}}
CHECKPOINT_REF = {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(@[0-9]{1,9})?$",
                  "description": "NAME (the latest version) or NAME@VERSION"}


def _path_parameter(name: str, schema: Schema) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _answer(status: int, description: str, schema: Schema | None = None,
            media: str = JSON) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {media: {"schema": schema}}
    return {str(status): answer, **ERRORS}


def _op(summary: str, responses: dict[str, Any], body: Schema | None = None,
        params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if params:
        operation["parameters"] = params
    return operation


def _listing(key: str, item: str) -> Schema:
    return obj({key: {"type": "array", "items": ref(item)}}, (key,))


def _log_query() -> list[dict[str, Any]]:
    return [_query("instance", {"type": "string"}, "one instance's log"),
            _query("tail", {"type": "integer", "minimum": 0, "maximum": MAX_TAIL_BYTES},
                   "bytes of each log, from its end (default 65536)"),
            _query("request_id", {"type": "string", "pattern": REQUEST_ID_PATTERN},
                   "only the lines of this request"),
            _query("follow", {"type": "boolean"}, "stream new lines (application/x-ndjson)")]


def _node_paths() -> dict[str, dict[str, Any]]:
    node = f"{API}/nodes/{{node}}"
    examples = obj({"endpoint": {"type": "string"}, "curl": {"type": "string"}},
                   ("endpoint", "curl"))
    return {
        f"{API}/nodes": {
            "get": _op("Every node", _answer(200, "the nodes", _listing("nodes", "Node"))),
            "post": _op("Create a node from a checkpoint or a Docker image",
                        _answer(201, "created; its key is shown only here",
                                obj({"node": ref("Node"), "key": {"type": "string"}},
                                    ("node", "key"))), body=ref("NodeCreate"))},
        node: {
            "get": _op("A node with its instances", _answer(200, "the node", ref("Node"))),
            "patch": _op("Change a node's settings; instances roll when they must",
                         _answer(200, "the node", ref("Node")), body=ref("NodeUpdate")),
            "delete": _op("Delete a node; its instances drain first", _answer(204, "deleted"))},
        f"{node}:execute": {"post": _op(
            "Call the node as the signed-in user",
            {"200": {"description": "the outputs", "content": {JSON: {"schema": obj(
                {"output": {"type": "object"}}, ("output",))}}},
             "503": {"description": "no instance of the node is healthy now",
                     "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                     "content": {JSON: {"schema": ref("Error")}}},
             "default": {"description": "the gateway's or the cell's error",
                         "content": {JSON: {"schema": {"type": "object"}}}}},
            body=obj({"input": {"type": "object"}}, ("input",)))},
        f"{node}:suspend": {"post": _op("Stop every instance, keep the node",
                                        _answer(200, "the node", ref("Node")))},
        f"{node}:resume": {"post": _op("Bring a suspended node back to its minimum",
                                       _answer(200, "the node", ref("Node")))},
        f"{node}/instances": {"get": _op("The node's instances", _answer(
            200, "its instances", _listing("instances", "Instance")))},
        f"{node}/logs": {"get": _op("The instances' logs", _answer(
            200, "each instance's log tail", _listing("logs", "Log")), params=_log_query())},
        f"{node}/metrics": {"get": _op("The instances' own metrics, labelled", _answer(
            200, "Prometheus text", {"type": "string"}, media="text/plain"))},
        f"{node}/stats": {"get": _op("The gateway's counters for the node", _answer(
            200, "counters now", obj({"node": NAME, **{name: {"type": "number"} for name in (
                "time", "requests", "errors", "duration_sum")}}, ("node", "time", "requests"))))},
        f"{node}/history": {"get": _op("The gateway's counters for the node over time", _answer(
            200, "cumulative counters, sampled every few seconds, oldest first; each "
            "sample's usage: per instance id, cpu_percent and memory_bytes (null: no reading "
            "since the last sample)", obj(
                {"node": NAME, "period_s": {"type": "number"}, "range_s": {"type": "number"},
                 "time": {"type": "number"}, "buckets": {"type": "array"},
                 "samples": {"type": "array", "items": {"type": "object"}}},
                ("node", "samples"))),
            params=[_query("range", {"type": "integer", "minimum": 1, "maximum": 86400},
                           "seconds back from now (default 300)")])},
        f"{node}/examples": {"get": _op("Calls to paste, filled with the pin-time input",
                                        _answer(200, "examples", examples))},
        f"{node}/requests": {"get": _op("The requests the node captured", _answer(
            200, "newest last", obj({"node": {"type": "string"},
                                     "requests": {"type": "array"}}, ("node", "requests"))),
            params=[_query("last", {"type": "integer", "minimum": 1, "maximum": MAX_LAST},
                           "how many (default 100)")])},
    }


def _console_paths() -> dict[str, dict[str, Any]]:
    """Read-only views for the console's instance table and checkpoint view (issue 17)."""
    integer, boolean = {"type": "integer"}, {"type": "boolean"}
    check = obj({"time": NUMBER, "ok": boolean, "in_a_row": integer})
    usage = obj({"id": {"type": "string"}, "cpu_percent": nullable(NUMBER),
                 "memory_bytes": nullable(integer), "last_check": nullable(check)},
                ("id", "cpu_percent", "memory_bytes", "last_check"))
    files = obj({"name": NAME, "version": integer, "id": {"type": "string"},
                 "size_bytes": integer, "signed": boolean,
                 "files": {"type": "array", "items": obj({"path": {"type": "string"},
                                                          "bytes": integer})}},
                ("name", "version", "id", "size_bytes", "signed", "files"))
    return {
        f"{API}/nodes/{{node}}/usage": {"get": _op(
            "Each instance's CPU, memory and last health check", _answer(
                200, "read from each process or container now", obj(
                    {"node": NAME, "time": NUMBER, "instances": {"type": "array", "items": usage}},
                    ("node", "time", "instances"))))},
        f"{API}/checkpoints/{{checkpoint}}/files": {"get": _op(
            "The files the checkpoint stores, its size, signed or not",
            _answer(200, "its stored folder", files))},
    }


def _other_paths() -> dict[str, dict[str, Any]]:
    alias = f"{API}/aliases/{{alias}}"
    checkpoint = f"{API}/checkpoints/{{checkpoint}}"
    events = [_query("since", {"type": "integer"}, "events after this sequence number"),
              _query("wait", {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_S},
                     "seconds to wait for the next event (long poll)"),
              _query("kind", {"enum": ["node", "checkpoint", "alias"]}, "one kind of event"),
              *[_query(name, {"type": "string"}, f"the events of one {name}")
                for name in ("node", "alias", "checkpoint")]]
    service = obj({"gateway_url": {"type": "string"}, "gateway_grpc_address": {
        "type": "string"}, "state_dir": {"type": "string"}}, ("gateway_url", "state_dir"))
    return {
        API: {"get": _op("Where the gateway listens, where the state is kept",
                         _answer(200, "the service", service))},
        f"{API}/openapi.json": {"get": _op("This document", _answer(
            200, "OpenAPI 3.1", {"type": "object"}))},
        f"{API}/checkpoints": {
            "get": _op("Every version of every checkpoint", _answer(
                200, "the checkpoints", _listing("checkpoints", "Checkpoint"))),
            "post": _op("Store a checkpoint pinned in a kernel", _answer(
                201, "stored (the same content gives the same version)", ref("Checkpoint")),
                body=ref("CheckpointBody"))},
        checkpoint: {
            "get": _op("A checkpoint version, with the list of versions",
                       _answer(200, "the checkpoint", ref("Checkpoint"))),
            "delete": _op("Delete one version or all; refused while a node uses one",
                          _answer(204, "deleted"))},
        f"{API}/aliases": {
            "get": _op("Every alias", _answer(200, "the aliases", _listing("aliases", "Alias"))),
            "post": _op("Create an alias", _answer(201, "created; its key is shown only here",
                                                   ref("AliasAnswer")), body=ref("AliasCreate"))},
        alias: {
            "get": _op("An alias and the status of each node it routes to",
                       _answer(200, "the alias", ref("Alias"))),
            "put": _op("Create or re-point the alias, atomically",
                       _answer(200, "re-pointed (201: created)", ref("AliasAnswer")),
                       body=ref("AliasSet")),
            "delete": _op("Delete the alias", _answer(204, "deleted"))},
        f"{alias}/shadow": {"get": _op("The shadow node's answers beside the primary's",
                                       _answer(200, "the comparison", {"type": "object"}))},
        f"{alias}/examples": {"get": _op("Calls to paste, filled with the pin-time input",
                                         _answer(200, "examples", {"type": "object"}))},
        f"{API}/events": {"get": _op("Status changes, oldest first", _answer(
            200, "the events", _listing("events", "Event")), params=events)},
    }


PARAMETERS: dict[str, Schema] = {
    "{node}": NAME, "{alias}": NAME, "{checkpoint}": CHECKPOINT_REF, "{project}": NAME,
    "{member}": {"type": "string", "minLength": 1}}
# paths that act in no project, or name theirs in the path
UNSCOPED = (API, f"{API}/openapi.json", f"{API}/projects", f"{API}/identity")
IDENTITY = obj({"user": {"type": "string"}, "groups": {"type": "array", "items": {
    "type": "string"}}, "admin": {"type": "boolean"}}, ("user", "groups", "admin"))


def _with_path_parameters(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Declare each path's template parameters once, on the path; `?project=` on every path
    that acts in a project."""
    for path, item in paths.items():
        item["parameters"] = [_path_parameter(name.strip("{}"), schema)
                              for name, schema in PARAMETERS.items() if name in path]
        if path not in UNSCOPED and not path.startswith(f"{API}/projects/"):
            item["parameters"].append(PROJECT_QUERY)
        if not item["parameters"]:
            del item["parameters"]
    return paths


def document(base_url: str = "/") -> dict[str, Any]:
    """The document; `base_url`: the Jupyter server's, where /deploy/api is."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "jupyter_deploy control API", "version": __version__,
                 "description": "Checkpoints, nodes, instances and aliases. Authenticated "
                                "like every Jupyter API: `Authorization: token TOKEN`."},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": _with_path_parameters({**_node_paths(), **_console_paths(), **_other_paths(),
                                        **project_paths(API, _op, _answer, _listing),
                                        f"{API}/identity": {"get": _op(
                                            "Who the service takes the caller for",
                                            _answer(200, "the caller", IDENTITY))}}),
        "components": {
            "schemas": {**SCHEMAS, **PROJECT_SCHEMAS},
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": "Authorization",
                                          "description": "`token TOKEN` (the Jupyter token)"}},
        },
    }
