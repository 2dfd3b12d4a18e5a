"""Issue 15, item 6: a shadow can be removed, and putting its node into traffic drops it."""

from __future__ import annotations

from ..conftest import checkpoint_body
from .test_api import ADDER, call, error_of, healthy_node

SHADOWED = {"nodes": {"adder-v2": 100}, "shadow": {"node": "adder-node", "percent": 50}}


async def two_nodes(jp_fetch, deploy) -> None:
    await healthy_node(jp_fetch, deploy, "adder-node")
    await healthy_node(jp_fetch, deploy, "adder-v2",
                       checkpoint=checkpoint_body("adder", **{**ADDER, "state": {"scale": 3.0}}))


async def test_a_weight_change_into_the_shadow_node_drops_the_shadow(jp_fetch, deploy):
    await two_nodes(jp_fetch, deploy)
    created = await call(jp_fetch, "aliases", method="POST", body={"name": "adder", **SHADOWED})
    assert created["alias"]["shadow"] == SHADOWED["shadow"] and created["warnings"] == []
    split = await call(jp_fetch, "aliases", "adder", method="PUT",
                       body={"nodes": {"adder-node": 50, "adder-v2": 50}})
    assert split["alias"]["nodes"] == {"adder-node": 50, "adder-v2": 50}
    assert split["alias"]["shadow"] is None
    assert split["warnings"] == ["node 'adder-node' now takes traffic, so it no longer shadows "
                                 "the alias (it was sent a copy of 50% of the requests)"]
    assert (await call(jp_fetch, "aliases", "adder"))["shadow"] is None
    [event] = (await call(jp_fetch, "events", params={"alias": "adder"}))["events"][-1:]
    assert "no longer shadows" in event["message"]
    # asking for both at once is still refused: the caller said something contradictory
    code, error = await error_of(jp_fetch, "aliases", "adder", method="PUT", body={
        "nodes": {"adder-node": 50, "adder-v2": 50}, "shadow": SHADOWED["shadow"]})
    assert (code, error["error"]["field"]) == (422, "shadow.node")
    await call(jp_fetch, "aliases", "adder", method="DELETE")


async def test_a_shadow_is_removed_by_null_or_a_percent_of_zero(jp_fetch, deploy):
    await two_nodes(jp_fetch, deploy)
    for removal in (None, {"node": "adder-node", "percent": 0}):
        await call(jp_fetch, "aliases", "adder", method="PUT", body=SHADOWED)
        kept = await call(jp_fetch, "aliases", "adder", method="PUT",
                          body={"nodes": {"adder-v2": 100}})
        assert kept["alias"]["shadow"] == SHADOWED["shadow"]  # left as it was
        removed = await call(jp_fetch, "aliases", "adder", method="PUT",
                             body={"nodes": {"adder-v2": 100}, "shadow": removal})
        assert (removed["alias"]["shadow"], removed["warnings"]) == (None, [])
    code, error = await error_of(jp_fetch, "aliases", "adder", method="PUT", body={
        "nodes": {"adder-v2": 100}, "shadow": {"node": "adder-node", "percent": 101}})
    assert (code, error["error"]["field"]) == (422, "shadow.percent")
    await call(jp_fetch, "aliases", "adder", method="DELETE")
