"""An instance's `GET /metrics`: its execution times, queue waits and errors, and the
custom metrics its cell made with `jupyter_deploy.metrics`, in the Prometheus text format.

The instance's own figures are plain numbers written by the cell thread only; importing
prometheus_client would add a tenth of a second to every cold start, so it is loaded only
when a cell uses the metrics helper.
"""

from __future__ import annotations

import json
import math
import sys
from bisect import bisect_left
from collections import Counter
from typing import Any

from ..http.messages import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0, math.inf)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, math.inf)  # callers per run (issue 18)
TYPES = {"unknown": "untyped", "info": "gauge", "stateset": "gauge",
         "gaugehistogram": "histogram"}


class Histogram:
    def __init__(self, name: str, documentation: str,
                 buckets: tuple[float, ...] = BUCKETS) -> None:
        self.name = name
        self.documentation = documentation
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.documentation}", f"# TYPE {self.name} histogram"]
        total = 0
        for bound, count in zip(self.buckets, list(self.counts), strict=False):
            total += count
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {total}')
        out += [f"{self.name}_count {total}", f"{self.name}_sum {_number(self.sum)}"]
        return out


class InstanceMetrics:
    """What every instance measures about the requests it runs."""

    def __init__(self) -> None:
        self.execution = Histogram("instance_execution_seconds",
                                   "Seconds the cell ran, per request.")
        self.queue = Histogram("instance_queue_wait_seconds",
                               "Seconds a request waited for the cell thread.")
        self.errors: Counter[str] = Counter()
        self.batches: Histogram | None = None  # a batched cell's: callers per run

    def batch(self, size: int) -> None:
        """Count one run of a batched cell on `size` callers."""
        if self.batches is None:
            self.batches = Histogram("instance_batch_size",
                                     "Callers whose rows one run of the cell served.",
                                     BATCH_SIZES)
        self.batches.observe(size)

    def observe(self, waited_s: float, ran_s: float, response: Response) -> None:
        self.queue.observe(waited_s)
        self.execution.observe(ran_s)
        if response.status >= 400:
            self.errors[error_kind(response)] += 1

    def render(self) -> bytes:
        lines = self.execution.lines() + self.queue.lines()
        if self.batches is not None:
            lines += self.batches.lines()
        lines += ["# HELP instance_errors_total Requests that did not give outputs, by kind.",
                  "# TYPE instance_errors_total counter"]
        lines += [f'instance_errors_total{{kind="{kind}"}} {count}'
                  for kind, count in sorted(self.errors.items())]
        custom = sys.modules.get("jupyter_deploy.metrics")
        if custom is not None:
            lines += render_families(custom.REGISTRY.collect())
        return ("\n".join(lines) + "\n").encode()

    def response(self) -> Response:
        return Response(200, self.render(), {"Content-Type": CONTENT_TYPE})


def error_kind(response: Response) -> str:
    """`cell_error` when the cell raised, else the error code (invalid_input, ...)."""
    if response.body.startswith(b'{"error_name"'):
        return "cell_error"
    try:
        return str(json.loads(response.body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status}"


def render_families(families: Any) -> list[str]:
    """Prometheus text lines of prometheus_client metric families (no `_created` series)."""
    out = []
    for family in families:
        name, kind = family.name, TYPES.get(family.type, family.type)
        if kind == "counter":  # as prometheus_client writes it
            name += "_total"
        out.append(f"# HELP {name} {_escape(family.documentation, quote=False)}")
        out.append(f"# TYPE {name} {kind}")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            out.append(f"{sample.name}{{{labels}}} {_number(sample.value)}" if labels
                       else f"{sample.name} {_number(sample.value)}")
    return out


def _escape(text: str, quote: bool = True) -> str:
    text = str(text).replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    return repr(float(value))
