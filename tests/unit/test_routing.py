"""How an alias splits traffic: the weight bands, and where a sticky key falls."""

from __future__ import annotations

from collections import Counter

import pytest

from jupyter_deploy.gateway.routing import pick_node, sticky_point

SPLIT = (("blue", 30), ("green", 70))


@pytest.mark.parametrize(("weights", "point", "node"), [
    (SPLIT, 0.0, "blue"), (SPLIT, 29.999, "blue"), (SPLIT, 30.0, "green"),
    (SPLIT, 99.999, "green"), (SPLIT, 100.0, "green"),  # past the end: the last band
    ((("off", 0), ("on", 100)), 0.0, "on"),  # a zero weight takes nothing
    ((("a", 50), ("b", 0), ("c", 50)), 50.0, "c"),
    ((("only", 100),), 42.0, "only"),
])
def test_pick_node(weights, point, node):
    assert pick_node(weights, point) == node


def test_sticky_point_is_stable_and_in_range():
    points = [sticky_point(f"user-{i}") for i in range(2000)]
    assert all(0 <= p < 100 for p in points)
    assert points == [sticky_point(f"user-{i}") for i in range(2000)]  # the same key, the same
    assert len(set(points)) > 1900


def test_sticky_keys_split_as_the_weights_say():
    shares = Counter(pick_node(SPLIT, sticky_point(f"user-{i}")) for i in range(4000))
    assert 0.27 < shares["blue"] / 4000 < 0.33
    deciles = Counter(int(sticky_point(f"k{i}") // 10) for i in range(4000))
    assert all(320 < deciles[d] < 480 for d in range(10))  # spread evenly over [0, 100)
