"""JSON Schemas (2020-12, as OpenAPI 3.1 has them) of what the control API takes and gives.

Bounds come from the validation rules themselves, so the document and the refusals agree.
"""

from __future__ import annotations

from typing import Any

from ..models import InstanceStatus, NodeStatus
from ..runtimes.logfiles import REQUEST_ID
from ..service.validation.containers import IMAGE_RE
from ..service.validation.names import ENV_NAME, NAME_RE
from ..service.validation.nodes import (
    MAX_BATCH_SIZE,
    MAX_BATCH_WAIT_MS,
    MAX_CAPTURE_LIMIT,
    MAX_INSTANCES,
    MAX_QUEUE,
    RUNTIMES,
)
from ..service.validation.placement import CONSTRAINT, MAX_CONSTRAINTS
from ..service.validation.ranges import (
    MAX_METADATA_BYTES,
    MAX_VARIABLE_NAME,
    MAX_VARIABLE_VALUE,
    MAX_VARIABLES,
    RANGES,
    ZERO_MEANS_NONE,
)
from ..store.sqlite import EVENT_KINDS

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def pattern(regex: Any) -> str:
    """A Python `...\\Z` pattern as an anchored ECMA-262 one."""
    return "^" + regex.pattern.removesuffix(r"\Z") + "$"


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [{"type": "null"}, schema]}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), closed: bool = False
        ) -> Schema:
    """An object; `closed`: no other property is accepted (request bodies)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def ranged(field: str) -> Schema:
    """The documented range of a numeric setting (validation/ranges.py)."""
    low, high, whole, unit = RANGES[field]
    schema: Schema = {"type": "integer" if whole else "number", "minimum": low,
                      "maximum": high, "description": f"in {unit}"}
    if field in ZERO_MEANS_NONE:
        return {"oneOf": [{"const": 0, "description": "no limit"}, schema]}
    return schema


NAME = {"type": "string", "pattern": pattern(NAME_RE), "description": "a lowercase DNS label"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
STRING = {"type": "string"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
VARIABLES = {"type": "object", "maxProperties": MAX_VARIABLES,
             "propertyNames": {"pattern": pattern(ENV_NAME), "maxLength": MAX_VARIABLE_NAME},
             "additionalProperties": {"type": "string", "maxLength": MAX_VARIABLE_VALUE},
             "description": "NAME: value; no NUL byte"}
STICKY = nullable({"oneOf": [obj({"header": {"type": "string", "minLength": 1}}, ("header",),
                                 closed=True),
                             obj({"input": {"type": "string", "minLength": 1}}, ("input",),
                                 closed=True)]})


def _health() -> Schema:
    numbers = {name: ranged(f"health.{name}") for name in
               ("timeout_s", "interval_s", "fail_threshold", "pass_threshold", "replace_after_s")}
    return obj({**numbers, "protocol": {"enum": ["http", "grpc"]},
                "path": {"type": "string", "pattern": r"^/\S*$"}, "port": PORT}, closed=True)


def _node_settings(creating: bool) -> Schema:
    """The body of POST /nodes (`creating`) or PATCH /nodes/{node}."""
    settings: dict[str, Schema] = {
        "checkpoint": {"type": "string", "description": "NAME or NAME@VERSION"},
        "min": {"type": "integer", "minimum": 0, "maximum": MAX_INSTANCES},
        "max": {"type": "integer", "minimum": 0, "maximum": MAX_INSTANCES},
        "env": VARIABLES, "secrets": VARIABLES, "health": _health(),
        "autoscale": obj({name: ranged(f"autoscale.{name}") for name in
                          ("target_concurrency", "up_delay_s", "down_delay_s")}, closed=True),
        "maintenance_limit": ranged("maintenance_limit"), "sticky": STICKY, "strict": BOOLEAN,
        "capture": nullable(obj({"percent": {"type": "number", "minimum": 0, "maximum": 100},
                                 "limit": {"type": "integer", "minimum": 1,
                                           "maximum": MAX_CAPTURE_LIMIT}}, closed=True)),
        "batch": nullable(obj({"max_size": {"type": "integer", "minimum": 1,
                                            "maximum": MAX_BATCH_SIZE, "default": 32},
                               "max_wait_ms": {"type": "number", "minimum": 0,
                                               "maximum": MAX_BATCH_WAIT_MS, "default": 5}},
                              closed=True)),
        "config": nullable({"type": "string", "description": "an instance configuration"}),
        "memory_mb": ranged("memory_mb"), "disk_mb": ranged("disk_mb"),
        "port": PORT, "protocol": {"enum": ["http", "grpc"]},
        "telemetry": nullable(obj({"path": {"type": "string", "pattern": "^/"},
                                   "port": {"type": "integer", "minimum": 0, "maximum": 65535}},
                                  closed=True)),
        "registry": nullable(obj({k: {"type": "string", "minLength": 1} for k in
                                  ("server", "username", "password")},
                                 ("username", "password"), closed=True)),
        "session_timeout_s": ranged("session_timeout_s"),
        "idle_timeout_s": ranged("idle_timeout_s"),
        "base_image": {"type": "string"}, "network": {"enum": ["host", "bridge"]},
        "placement": {"type": "array", "maxItems": MAX_CONSTRAINTS,
                      "items": {"type": "string", "pattern": pattern(CONSTRAINT)},
                      "description": "swarm runtime: constraints on the hosts"},
        "max_queue": nullable({"type": "integer", "minimum": 0, "maximum": MAX_QUEUE}),
        "expose_tracebacks": BOOLEAN, "secret_files": VARIABLES,
    }
    if not creating:
        return obj(settings, closed=True)
    image = {"type": "string", "pattern": pattern(IMAGE_RE)}
    return obj({"name": NAME, "project": NAME, "runtime": {"enum": list(RUNTIMES)},
                "image": image, **settings}, ("name",), closed=True)


FIELD = obj({"name": STRING, "type": STRING}, ("name",))
ERROR = obj({"error": obj({"code": STRING, "message": STRING, "field": STRING},
                          ("code", "message"))}, ("error",))
INSTANCE = obj({
    "id": STRING, "node": STRING, "status": {"enum": [s.value for s in InstanceStatus]},
    "pid": nullable({"type": "integer"}), "host": STRING, "port": nullable({"type": "integer"}),
    "log_path": STRING, "created": NUMBER, "message": STRING, "runtime": STRING,
}, ("id", "node", "status"))
NODE = obj({
    "name": NAME, "checkpoint": STRING, "checkpoint_id": STRING, "image": STRING,
    "runtime": {"enum": list(RUNTIMES)}, "status": {"enum": [s.value for s in NodeStatus]},
    "min": {"type": "integer"}, "max": {"type": "integer"}, "env": {"type": "object"},
    "health": {"type": "object"}, "autoscale": {"type": "object"}, "suspended": BOOLEAN,
    "batch": nullable(obj({"max_size": {"type": "integer"}, "max_wait_ms": NUMBER})),
    "secrets": {"type": "array", "items": STRING, "description": "names only"},
    "endpoint": STRING, "instances": {"type": "array", "items": ref("Instance")},
    "project": NAME,
}, ("name", "status", "min", "max", "runtime", "instances", "endpoint"))
CHECKPOINT = obj({
    "id": STRING, "name": NAME, "version": {"type": "integer", "minimum": 1}, "source": STRING,
    "inputs": {"type": "array", "items": FIELD}, "outputs": {"type": "array", "items": FIELD},
    "environment": {"type": "object"}, "state": {"type": "array", "items": STRING},
    "example": {"type": "object"}, "created": NUMBER,
    "batch": {"type": "boolean", "description": "pinned with --batch"},
    "versions": {"type": "array", "items": {"type": "integer"}}, "project": NAME,
}, ("id", "name", "version", "source", "inputs", "outputs"))
CHECKPOINT_BODY = obj({
    "name": NAME, "source": STRING, "inputs": {"type": "array", "items": FIELD},
    "outputs": {"type": "array", "items": FIELD}, "environment": {"type": "object"},
    "state": {"type": "array", "items": STRING}, "example": {"type": "object"},
    "batch": {"type": "boolean", "description": "the cell works on stacked rows"},
    "data": {"type": "string", "contentEncoding": "base64",
             "description": "the pickled interpreter state"},
}, ("name", "source", "environment", "state", "example", "data"))
METADATA = {"type": "object", "additionalProperties": STRING,
            "description": f"at most {MAX_METADATA_BYTES} bytes as JSON"}
ALIAS_FIELDS: dict[str, Schema] = {
    "nodes": {"type": "object", "minProperties": 1,
              "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100},
              "description": "node: percent of the traffic; the weights sum to 100"},
    "metadata": METADATA, "public": BOOLEAN, "sticky": STICKY,
    "shadow": nullable(obj({"node": NAME, "percent": {"type": "number", "minimum": 0,
                                                      "maximum": 100}},
                           ("node", "percent"), closed=True)),
    "force": {"type": "boolean", "description": "route all traffic to a node not serving"},
}
ALIAS = obj({"name": NAME, "nodes": {"type": "object"}, "metadata": METADATA,
             "public": BOOLEAN, "endpoint": STRING, "project": NAME,
             "routing": {"type": "array", "items": obj({"node": STRING, "weight": {
                 "type": "integer"}, "status": nullable(STRING)})}},
            ("name", "nodes", "public", "endpoint", "routing"))
EVENT = obj({"seq": {"type": "integer"}, "time": NUMBER, "kind": {"enum": list(EVENT_KINDS)},
             "subject": STRING, "node": nullable(STRING), "instance": nullable(STRING),
             "status": nullable(STRING), "message": STRING, "action": nullable(STRING),
             "user": nullable(STRING), "project": NAME},
            ("seq", "time", "kind", "message"))
LOG = obj({"instance": STRING, "status": STRING, "removed": BOOLEAN, "log": STRING},
          ("instance", "log"))

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR, "Instance": INSTANCE, "Node": NODE, "Checkpoint": CHECKPOINT,
    "CheckpointBody": CHECKPOINT_BODY, "NodeCreate": _node_settings(creating=True),
    "NodeUpdate": _node_settings(creating=False), "Alias": ALIAS,
    "AliasCreate": obj({"name": NAME, "project": NAME, **ALIAS_FIELDS}, ("name", "nodes"),
                       closed=True),
    "AliasSet": obj(ALIAS_FIELDS, ("nodes",), closed=True),
    "AliasAnswer": obj({"alias": ref("Alias"), "key": nullable(STRING),
                        "warnings": {"type": "array", "items": STRING}},
                       ("alias", "key", "warnings")),
    "Event": EVENT, "Log": LOG,
}
REQUEST_ID_PATTERN = pattern(REQUEST_ID)
