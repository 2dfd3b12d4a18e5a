"""Checking what users send for nodes and aliases: every refusal names its field."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ...gateway.capture import capture_rule
from ...models import (
    Alias,
    Autoscale,
    HealthCheck,
    InvalidInput,
    Node,
    check_name,
    check_variables,
)
from ...models import (
    is_whole as _whole,
)
from .containers import CONTAINER_FIELDS, health_numbers

MAX_INSTANCES = 64
NODE_FIELDS = {"min", "max", "env", "health", "autoscale", "maintenance_limit", "sticky",
               "checkpoint", "strict", "capture"}


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def apply_node_settings(node: Node, body: dict[str, Any], creating: bool = False) -> None:
    """Set what `body` holds of a node's settings on `node` (all or nothing)."""
    unknown = set(body) - NODE_FIELDS - CONTAINER_FIELDS - {"name", "runtime"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"{field} is not a node setting", field=field)
    low, high = instance_range(body, node.min, node.max, grow_max=creating)
    env = check_variables(body["env"], "env") if "env" in body else node.env
    health = _numbers(HealthCheck(**vars(node.health)), health_numbers(body), "health")
    autoscale = _numbers(Autoscale(**vars(node.autoscale)), body.get("autoscale", {}),
                         "autoscale")
    limit = body.get("maintenance_limit", node.maintenance_limit)
    if not _whole(limit) or limit < 1:
        raise InvalidInput("maintenance_limit must be a whole number >= 1",
                           field="maintenance_limit")
    sticky = sticky_rule(body["sticky"], "sticky") if "sticky" in body else node.sticky
    strict = _flag(body, "strict", node.strict)
    capture = capture_rule(body["capture"], node.capture) if "capture" in body else node.capture
    node.min, node.max, node.env, node.health, node.autoscale = low, high, env, health, autoscale
    node.maintenance_limit, node.sticky, node.strict, node.capture = limit, sticky, strict, capture


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


def alias_settings(body: dict[str, Any], nodes: dict[str, Node], serving: set[str],
                   previous: Alias | None) -> Alias:
    """A new or updated alias; its key is the caller's business. `serving`: the nodes that
    are Healthy with at least one Healthy instance, and not suspended."""
    name = check_name(body.get("name"), "name")
    unknown = set(body) - {"name", "nodes", "metadata", "public", "shadow", "sticky", "force"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"{field} is not an alias setting", field=field)
    weights = body.get("nodes")
    if not isinstance(weights, dict) or not weights:
        raise InvalidInput('nodes must be an object of {"node": weight}', field="nodes")
    for node, weight in weights.items():
        if node not in nodes or nodes[node].deleting:
            raise InvalidInput(f"no node {node!r}", field=f"nodes.{node}")
        if not _whole(weight) or not 0 <= weight <= 100:
            raise InvalidInput("a weight is a whole percent from 0 to 100",
                               field=f"nodes.{node}")
    if sum(weights.values()) != 100:
        raise InvalidInput(f"the weights sum to {sum(weights.values())}, not 100", field="nodes")
    force = _flag(body, "force", False)
    for node, weight in weights.items():
        if weight == 100 and node not in serving and not force:
            raise InvalidInput(f"node {node!r} is not serving (not Healthy, no Healthy instance, "
                               "or suspended): it cannot take all the traffic (send force: true "
                               "to do it anyway)", field=f"nodes.{node}")
    metadata = body.get("metadata", previous.metadata if previous else {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidInput("metadata must be an object of strings", field="metadata")
    public = _flag(body, "public", previous.public if previous else False)
    shadow = body.get("shadow", previous.shadow if previous else None)
    if shadow is not None:
        if not isinstance(shadow, dict) or set(shadow) != {"node", "percent"}:
            raise InvalidInput('shadow must be {"node": NAME, "percent": P}', field="shadow")
        shadow_node = shadow["node"]
        if not isinstance(shadow_node, str) or shadow_node not in nodes or \
                nodes[shadow_node].deleting:
            raise InvalidInput(f"no node {shadow_node!r}", field="shadow.node")
        if weights.get(shadow_node):
            raise InvalidInput(f"node {shadow_node!r} takes traffic already: a shadow node must "
                               "not (its state would change what callers get)",
                               field="shadow.node")
        percent = shadow["percent"]
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not (
                0 < percent <= 100):
            raise InvalidInput("shadow.percent must be more than 0 and at most 100",
                               field="shadow.percent")
    sticky = sticky_rule(body.get("sticky", previous.sticky if previous else None), "sticky")
    alias = Alias(name=name, nodes=dict(weights), metadata=dict(metadata), public=public,
                  shadow=shadow, sticky=sticky)
    if previous is not None:
        alias.created, alias.key_hash = previous.created, previous.key_hash
    return alias


def _numbers(target: Any, value: Any, prefix: str) -> Any:
    """Positive numbers onto a settings dataclass; whole ones for `*_threshold` and `*_limit`."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{prefix} must be an object", field=prefix)
    known = {f.name for f in fields(target)}
    for name, item in value.items():
        if name not in known:
            raise InvalidInput(f"{prefix}.{name} is not a setting of {prefix}",
                               field=f"{prefix}.{name}")
        whole = name.endswith("threshold")
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0 or (
                whole and not isinstance(item, int)):
            raise InvalidInput(f"{prefix}.{name} must be a positive "
                               f"{'whole number' if whole else 'number'}", field=f"{prefix}.{name}")
        setattr(target, name, item)
    return target


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value
