"""Checking what users send for nodes: every refusal names its field, and a node's settings
change all together or not at all."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ...models import Autoscale, HealthCheck, InvalidInput, Node
from .containers import CONTAINER_FIELDS, apply, check_image, container_settings, health_numbers
from .names import check_variables, flag, unknown_field
from .names import is_whole as _whole
from .placement import CONTAINER_RUNTIMES, runtime_of
from .ranges import in_range, no_nul

RUNTIMES = ("process", "docker", "swarm")
MAX_INSTANCES = 64
NODE_FIELDS = {"min", "max", "env", "health", "autoscale", "maintenance_limit", "sticky",
               "checkpoint", "strict", "capture", "max_queue", "expose_tracebacks", "batch"}
CAPTURE_LIMIT = 1000  # captured requests kept per node unless the node says otherwise
MAX_CAPTURE_LIMIT = 100_000
MAX_QUEUE = 10_000  # requests a node's queue may hold
BATCH_DEFAULTS = {"max_size": 32, "max_wait_ms": 5}  # issue 18
MAX_BATCH_SIZE = 1024  # callers one run of a batched cell may serve
MAX_BATCH_WAIT_MS = 1000


def new_node_runtime(body: dict[str, Any], default: str = "process") -> str:
    """The runtime a new node asks for, else the service's default (docker for an image
    when the default is process)."""
    return runtime_of(body, default, RUNTIMES)


def image_node(name: str, runtime: str, body: dict[str, Any], key_hash: str) -> Node:
    """A new Docker-image node (its settings not applied yet)."""
    if runtime not in CONTAINER_RUNTIMES:
        raise InvalidInput("a Docker-image node runs on the docker or swarm runtime",
                           field="runtime")
    if "checkpoint" in body:
        raise InvalidInput("a node runs a checkpoint or an image, not both", field="image")
    return Node(name=name, checkpoint_id="", checkpoint="", runtime=runtime,
                image=check_image(body["image"]), key_hash=key_hash,
                health=HealthCheck(interval_s=15.0, path="/"))  # the seed's defaults


def check_update(node: Node, body: dict[str, Any]) -> None:
    """Refuse what an update cannot change."""
    if "name" in body or "runtime" in body:
        field = "name" if "name" in body else "runtime"
        raise InvalidInput(f"{field} cannot be changed on a node", field=field)
    if "checkpoint" in body and node.from_image:
        raise InvalidInput("a Docker-image node has no checkpoint", field="checkpoint")


def configure(node: Node, body: dict[str, Any], configs: dict[str, dict[str, Any]],
              stored: dict[str, str] | None) -> dict[str, str] | None:
    """Apply `body`'s settings to the node, all or nothing; the secrets to store, if they
    change. `stored`: the node's secrets now (None at creation)."""
    creating = stored is None
    no_nul(body)
    changes, secrets = container_settings(node, body, configs, creating, stored)
    apply_node_settings(node, body, creating=creating)
    apply(node, changes)
    return secrets


def apply_node_settings(node: Node, body: dict[str, Any], creating: bool = False) -> None:
    """Set what `body` holds of a node's settings on `node` (all or nothing)."""
    unknown_field(body, NODE_FIELDS | CONTAINER_FIELDS | {"name", "runtime"}, "a node setting")
    low, high = instance_range(body, node.min, node.max, grow_max=creating)
    env = check_variables(body["env"], "env") if "env" in body else node.env
    health = _numbers(HealthCheck(**vars(node.health)), health_numbers(body), "health")
    autoscale = _numbers(Autoscale(**vars(node.autoscale)), body.get("autoscale", {}),
                         "autoscale")
    limit = in_range(body.get("maintenance_limit", node.maintenance_limit), "maintenance_limit")
    sticky = sticky_rule(body["sticky"], "sticky") if "sticky" in body else node.sticky
    strict = flag(body, "strict", node.strict)
    capture = capture_rule(body["capture"], node.capture) if "capture" in body else node.capture
    queue = queue_bound(body["max_queue"]) if "max_queue" in body else node.max_queue
    expose = flag(body, "expose_tracebacks", node.expose_tracebacks)
    batch = batch_rule(body["batch"], node.batch) if "batch" in body else node.batch
    node.min, node.max, node.env, node.health, node.autoscale = low, high, env, health, autoscale
    node.maintenance_limit, node.sticky, node.strict, node.capture = limit, sticky, strict, capture
    node.max_queue, node.expose_tracebacks, node.batch = queue, expose, batch


def batch_rule(value: Any, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """`null` (off) or {"max_size": N, "max_wait_ms": MS}; what is not given keeps its value
    (at first, 32 and 5)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput('batch must be {"max_size": N, "max_wait_ms": MS} or null',
                           field="batch")
    unknown = set(value) - set(BATCH_DEFAULTS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"batch.{field} is not a batch setting", field=f"batch.{field}")
    rule = {**BATCH_DEFAULTS, **(previous or {}), **value}
    if not _whole(rule["max_size"]) or not 1 <= rule["max_size"] <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch.max_size must be a whole number from 1 to {MAX_BATCH_SIZE}",
                           field="batch.max_size")
    wait = rule["max_wait_ms"]
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or \
            not 0 <= wait <= MAX_BATCH_WAIT_MS:
        raise InvalidInput(f"batch.max_wait_ms must be a number from 0 to {MAX_BATCH_WAIT_MS}",
                           field="batch.max_wait_ms")
    return rule


def check_batch(node: Node, body: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
    """Refuse batch settings unless the node's checkpoint (as it will be) was pinned with
    --batch; checked before anything of the node changes."""
    batch = batch_rule(body["batch"], node.batch) if "batch" in body else node.batch
    if batch and not (checkpoint or {}).get("batch"):
        pinned = f"{checkpoint['name']}@{checkpoint['version']}" if checkpoint and \
            "version" in checkpoint else node.checkpoint
        what = "a Docker-image node has none" if node.from_image else \
            f"checkpoint {pinned} was not"
        raise InvalidInput(f"batch needs a checkpoint pinned with --batch (%%deploy pin NAME "
                           f"... --batch): {what}", field="batch")


def queue_bound(value: Any) -> int | None:
    """`null` (the default: a few requests per instance) or a whole number of requests."""
    if value is not None and (not _whole(value) or not 0 <= value <= MAX_QUEUE):
        raise InvalidInput(f"max_queue must be null or a whole number from 0 to {MAX_QUEUE}",
                           field="max_queue")
    return value


def instance_range(body: dict[str, Any], default_min: int, default_max: int,
                   grow_max: bool = False) -> tuple[int, int]:
    """min..max; at creation, `min` alone sets `max` too when it is higher."""
    low, high = body.get("min", default_min), body.get("max", default_max)
    for field, value in (("min", low), ("max", high)):
        if not _whole(value) or not 0 <= value <= MAX_INSTANCES:
            raise InvalidInput(f"{field} must be a whole number from 0 to {MAX_INSTANCES}",
                               field=field)
    if grow_max and "max" not in body:
        high = max(high, low)
    if high < 1 or low > high:
        field = "min" if "min" in body and "max" not in body else "max"
        raise InvalidInput(f"the instance range {low}..{high} is empty: need 1 <= max and "
                           "min <= max", field=field)
    return low, high


def sticky_rule(value: Any, field: str) -> dict[str, str] | None:
    """None, {"header": NAME} or {"input": NAME}."""
    if value is None:
        return None
    if (not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in
            ("header", "input") or not isinstance(next(iter(value.values())), str)
            or not next(iter(value.values()))):
        raise InvalidInput(f'{field} must be {{"header": NAME}} or {{"input": NAME}}',
                           field=field)
    return dict(value)


def capture_rule(value: Any, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """`null` (off) or {"percent": P, "limit": N}; what is not given keeps its value.
    A percent of 0 turns capture off."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput('capture must be {"percent": P, "limit": N} or null', field="capture")
    unknown = set(value) - {"percent", "limit"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"capture.{field} is not a capture setting", field=f"capture.{field}")
    rule = {"percent": 0, "limit": CAPTURE_LIMIT, **(previous or {}), **value}
    percent, limit = rule["percent"], rule["limit"]
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or \
            not 0 <= percent <= 100:
        raise InvalidInput("capture.percent must be a number from 0 to 100",
                           field="capture.percent")
    if not _whole(limit) or not 1 <= limit <= MAX_CAPTURE_LIMIT:
        raise InvalidInput(f"capture.limit must be a whole number from 1 to {MAX_CAPTURE_LIMIT}",
                           field="capture.limit")
    return rule if percent > 0 else None


def _numbers(target: Any, value: Any, prefix: str) -> Any:
    """Numbers onto a settings dataclass, each within its range (ranges.RANGES)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{prefix} must be an object", field=prefix)
    known = {f.name for f in fields(target)}
    for name, item in value.items():
        if name not in known:
            raise InvalidInput(f"{prefix}.{name} is not a setting of {prefix}",
                               field=f"{prefix}.{name}")
        setattr(target, name, in_range(item, f"{prefix}.{name}"))
    return target
