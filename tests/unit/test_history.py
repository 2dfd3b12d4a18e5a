"""The per-node metric ring: bounded, thinned without losing requests, forgetting the gone."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from jupyter_deploy.gateway.metrics import BUCKETS, Family
from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.service.observe import MetricHistory, counters


def _history(size_s: float = 50.0) -> tuple[MetricHistory, Family, Routes]:
    registry = CollectorRegistry()
    family = Family(registry, "node", "node_id")
    routes = Routes()
    routes.add_node("a", "")
    return MetricHistory(registry.collect, routes, period_s=1.0, span_s=size_s), family, routes


def test_counters_split_answers_by_class_and_fill_the_buckets():
    history, family, _ = _history()
    family.observe("a", "/", 200, 0.002)
    family.observe("a", "/", 422, 0.0001)
    family.observe("a", "/", 503, 40.0)
    family.observe("a", "/", "INVALID_ARGUMENT", 0.3, grpc=True)
    totals = counters(history.collect())["a"]
    assert (totals["requests"], totals["ok"], totals["client_errors"],
            totals["server_errors"]) == (4, 1, 2, 1)
    assert totals["duration_count"] == 4 and len(totals["buckets"]) == len(BUCKETS)
    assert totals["buckets"][0] == 1 and totals["buckets"][-2] == 3 and totals["buckets"][-1] == 4


def test_the_ring_is_bounded_and_a_long_range_is_thinned_from_the_newest():
    history, family, _ = _history(size_s=2000)
    for second in range(1000):
        family.observe("a", "/", 200, 0.01)
        history.sample(now=float(second))
    assert len(history.rings["a"]) == 1000
    series = history.series("a", range_s=10_000, now=999.0)
    samples = series["samples"]
    assert len(samples) <= 400 and samples[-1]["time"] == 999.0
    assert samples[-1]["requests"] == 1000  # cumulative: thinning loses no request
    recent = history.series("a", range_s=9, now=999.0)["samples"]
    assert [s["time"] for s in recent] == [float(t) for t in range(990, 1000)]
    small, _, _ = _history(size_s=5)
    for second in range(20):
        small.sample(now=float(second))
    assert len(small.rings["a"]) == 5


def test_a_deleted_node_loses_its_ring():
    history, _, routes = _history()
    history.sample(now=1.0)
    assert "a" in history.rings
    del routes.nodes["a"]
    history.sample(now=2.0)
    assert history.rings == {} and history.series("a", 60, now=2.0)["samples"] == []
