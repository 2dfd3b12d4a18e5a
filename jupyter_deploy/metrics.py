"""Custom metrics for a deployed cell.

    from . import metrics
    metrics.counter("predictions", "Predictions made").inc()
    metrics.histogram("score", "Scores returned", buckets=(0.25, 0.5, 0.75)).observe(score)
    metrics.gauge("queue_length", "Items waiting", ["queue"]).labels("main").set(3)

Each function gets the metric of that name, or makes it the first time, so the cell can call
it on every request. The objects are prometheus_client's. Each instance serves them at its
`GET /metrics`; the gateway's `GET /metrics` shows them for every healthy instance with the
labels `node_id` and `instance_id`. In a notebook (at pin time) they count harmlessly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as _Counter
from prometheus_client import Gauge as _Gauge
from prometheus_client import Histogram as _Histogram
from prometheus_client import Summary as _Summary

__all__ = ["REGISTRY", "counter", "gauge", "histogram", "summary"]

REGISTRY = CollectorRegistry()  # this process's custom metrics, apart from any other
_made: dict[str, tuple[Any, type, tuple[str, ...]]] = {}
_lock = threading.Lock()


def _get(kind: type, name: str, documentation: str, labelnames: Sequence[str],
         **options: Any) -> Any:
    labels = tuple(labelnames)
    with _lock:
        made = _made.get(name)
        if made is None:
            metric = kind(name, documentation or name, labels, registry=REGISTRY, **options)
            made = _made[name] = (metric, kind, labels)
        elif made[1:] != (kind, labels):
            raise ValueError(f"metric {name!r} exists already as a {made[1].__name__} with "
                             f"labels {list(made[2])}")
        return made[0]


def counter(name: str, documentation: str = "", labelnames: Sequence[str] = ()) -> _Counter:
    """A counter (exposed as `NAME_total`): `.inc()`, `.labels(...).inc(2)`."""
    return _get(_Counter, name, documentation, labelnames)


def gauge(name: str, documentation: str = "", labelnames: Sequence[str] = ()) -> _Gauge:
    """A value that goes up and down: `.set(v)`, `.inc()`, `.dec()`."""
    return _get(_Gauge, name, documentation, labelnames)


def histogram(name: str, documentation: str = "", labelnames: Sequence[str] = (),
              buckets: Sequence[float] | None = None) -> _Histogram:
    """Observations in buckets: `.observe(v)`, `with ....time():`."""
    options = {} if buckets is None else {"buckets": tuple(buckets)}
    return _get(_Histogram, name, documentation, labelnames, **options)


def summary(name: str, documentation: str = "", labelnames: Sequence[str] = ()) -> _Summary:
    """A count and a sum of observations: `.observe(v)`."""
    return _get(_Summary, name, documentation, labelnames)


def forget_all() -> None:
    """Drop every metric made so far: the next call makes it again, from zero."""
    with _lock:
        for metric, _, _ in _made.values():
            REGISTRY.unregister(metric)
        _made.clear()
