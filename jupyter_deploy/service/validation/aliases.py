"""Checking what users send for aliases: weights, shadow, sticky routing, metadata."""

from __future__ import annotations

from typing import Any

from ...models import Alias, InvalidInput, Node
from .names import check_name, flag, unknown_field
from .names import is_whole as _whole
from .nodes import sticky_rule
from .ranges import check_metadata

ALIAS_FIELDS = {"name", "nodes", "metadata", "public", "shadow", "sticky", "force"}


def alias_settings(body: dict[str, Any], nodes: dict[str, Node], serving: set[str],
                   previous: Alias | None) -> tuple[Alias, list[str]]:
    """A new or updated alias (its key is the caller's business), and warnings about what
    changed besides what was asked. `serving`: the nodes that are Healthy with at least one
    Healthy instance, and not suspended."""
    name = check_name(body.get("name"), "name")
    unknown_field(body, ALIAS_FIELDS, "an alias setting")
    weights = alias_weights(body.get("nodes"), nodes)
    force = flag(body, "force", False)
    for node, weight in weights.items():
        if weight == 100 and node not in serving and not force:
            raise InvalidInput(f"node {node!r} is not serving (not Healthy, no Healthy instance, "
                               "or suspended): it cannot take all the traffic (send force: true "
                               "to do it anyway)", field=f"nodes.{node}")
    metadata = check_metadata(body.get("metadata", previous.metadata if previous else {}))
    public = flag(body, "public", previous.public if previous else False)
    warnings: list[str] = []
    if "shadow" in body:
        shadow = shadow_rule(body["shadow"], nodes, weights)
    else:
        shadow = kept_shadow(previous.shadow if previous else None, weights, warnings)
    sticky = sticky_rule(body.get("sticky", previous.sticky if previous else None), "sticky")
    alias = Alias(name=name, nodes=dict(weights), metadata=dict(metadata), public=public,
                  shadow=shadow, sticky=sticky)
    if previous is not None:
        alias.created, alias.key_hash = previous.created, previous.key_hash
    return alias, warnings


def alias_weights(weights: Any, nodes: dict[str, Node]) -> dict[str, int]:
    """{"node": percent}: existing nodes, whole percents that sum to 100."""
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
    return dict(weights)


def shadow_rule(shadow: Any, nodes: dict[str, Node], weights: dict[str, int]
                ) -> dict[str, Any] | None:
    """None (no shadow) or {"node": NAME, "percent": P}, sent with the request; a percent
    of 0 is no shadow either."""
    if shadow is None:
        return None
    if not isinstance(shadow, dict) or set(shadow) != {"node", "percent"}:
        raise InvalidInput('shadow must be {"node": NAME, "percent": P} or null',
                           field="shadow")
    shadow_node, percent = shadow["node"], shadow["percent"]
    if not isinstance(shadow_node, str) or shadow_node not in nodes or \
            nodes[shadow_node].deleting:
        raise InvalidInput(f"no node {shadow_node!r}", field="shadow.node")
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not (
            0 <= percent <= 100):
        raise InvalidInput("shadow.percent must be a number from 0 (no shadow) to 100",
                           field="shadow.percent")
    if percent == 0:
        return None
    if weights.get(shadow_node):
        raise InvalidInput(f"node {shadow_node!r} takes traffic already: a shadow node must "
                           "not (its state would change what callers get)",
                           field="shadow.node")
    return {"node": shadow_node, "percent": percent}


def kept_shadow(shadow: dict[str, Any] | None, weights: dict[str, int], warnings: list[str]
                ) -> dict[str, Any] | None:
    """The alias's shadow when a request leaves it as it was: dropped, with a warning, once
    its node takes traffic (a shadow node must not: its state would change the answers)."""
    if shadow is None or not weights.get(shadow["node"]):
        return shadow
    warnings.append(f"node {shadow['node']!r} now takes traffic, so it no longer shadows the "
                    f"alias (it was sent a copy of {shadow['percent']:g}% of the requests)")
    return None
