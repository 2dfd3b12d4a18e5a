"""The alias rules and the event filter as functions: no service, no store."""

from __future__ import annotations

import pytest

from jupyter_deploy.models import Alias, InvalidInput, Node
from jupyter_deploy.service.observe import event_filter
from jupyter_deploy.service.validation.aliases import alias_settings

NODES = {name: Node(name=name, checkpoint_id="c", checkpoint="c@1") for name in ("a", "b", "s")}
SERVING = {"a", "b", "s"}
SHADOWED = Alias(name="x", nodes={"a": 100}, shadow={"node": "s", "percent": 20}, key_hash="k")


@pytest.mark.parametrize(("body", "shadow", "warned"), [
    ({"nodes": {"a": 100}}, {"node": "s", "percent": 20}, False),  # kept as it was
    ({"nodes": {"a": 50, "b": 50}}, {"node": "s", "percent": 20}, False),
    ({"nodes": {"a": 50, "s": 50}}, None, True),  # its node takes traffic: dropped
    ({"nodes": {"a": 100, "s": 0}}, {"node": "s", "percent": 20}, False),  # weight 0: no traffic
    ({"nodes": {"a": 100}, "shadow": None}, None, False),
    ({"nodes": {"a": 100}, "shadow": {"node": "s", "percent": 0}}, None, False),
    ({"nodes": {"a": 100}, "shadow": {"node": "b", "percent": 5}}, {"node": "b", "percent": 5},
     False),
])
def test_what_becomes_of_a_shadow(body, shadow, warned):
    alias, warnings = alias_settings({"name": "x", **body}, NODES, SERVING, SHADOWED)
    assert alias.shadow == shadow and bool(warnings) == warned
    assert (alias.key_hash, alias.created) == (SHADOWED.key_hash, SHADOWED.created)


@pytest.mark.parametrize(("body", "field"), [
    ({"nodes": {"a": 50, "s": 50}, "shadow": {"node": "s", "percent": 20}}, "shadow.node"),
    ({"nodes": {"a": 100}, "shadow": {"node": "s", "percent": -1}}, "shadow.percent"),
    ({"nodes": {"a": 100}, "shadow": {"node": "s", "percent": True}}, "shadow.percent"),
    ({"nodes": {"a": 100}, "shadow": {"node": "ghost", "percent": 5}}, "shadow.node"),
    ({"nodes": {"a": 100}, "shadow": {"node": "s"}}, "shadow"),
    ({"nodes": {"a": 60}}, "nodes"),
    ({"nodes": {"a": 100}, "colour": "red"}, "colour"),
])
def test_bad_aliases_name_their_field(body, field):
    with pytest.raises(InvalidInput) as info:
        alias_settings({"name": "x", **body}, NODES, SERVING, SHADOWED)
    assert info.value.field == field


@pytest.mark.parametrize(("query", "where"), [
    ({}, (None, None)),
    ({"kind": "alias"}, ("alias", None)),
    ({"node": "n"}, ("node", "n")),
    ({"alias": "x", "kind": "alias"}, ("alias", "x")),
    ({"checkpoint": "c"}, ("checkpoint", "c")),
])
def test_event_filters(query, where):
    assert event_filter(**query) == where
