"""How many instances a node wants, and which ones an update or a scale-down replaces.

Pure decisions: the supervisor samples the node's load and applies what these return.
"""

from __future__ import annotations

import math

from ..models import Instance, InstanceStatus, Node

Samples = list[tuple[float, int]]  # (time, requests in flight or held for an instance)


def desired_instances(node: Node, previous: int, samples: Samples, now: float) -> int:
    """Within min..max: up when the load has called for more instances for `up_delay_s`,
    down when it has called for fewer for `down_delay_s`; from zero at the first request."""
    if node.suspended:
        return 0
    rule = node.autoscale
    desired = previous
    if samples:
        need = [(t, math.ceil(load / rule.target_concurrency)) for t, load in samples]
        up = [n for t, n in need if t >= now - rule.up_delay_s]
        down = [n for t, n in need if t >= now - rule.down_delay_s]
        covers = samples[0][0]  # how far back the samples go
        if previous == 0 and need[-1][1] > 0:
            desired = max(1, min(up))  # a request is held: start at once
        elif covers <= now - rule.up_delay_s and min(up) > previous:
            desired = min(up)
        elif covers <= now - rule.down_delay_s and max(down) < previous:
            desired = max(down)
    return max(node.min, min(node.max, desired))


def window(samples: Samples, node: Node, now: float) -> Samples:
    """The samples `desired_instances` still needs at `now` (older ones are dropped)."""
    horizon = now - max(node.autoscale.up_delay_s, node.autoscale.down_delay_s) - 1.0
    return [s for s in samples if s[0] >= horizon]


def plan(node: Node, active: list[Instance], wanted: int) -> tuple[int, list[Instance]]:
    """How many instances to start and which to stop, so that `wanted` instances of the
    node's current generation serve; an update rolls with at most `maintenance_limit`
    new instances starting at once, and an old one stops only when a new one serves."""
    fresh = [i for i in active if i.generation == node.generation]
    stale = [i for i in active if i.generation != node.generation]
    serving = sum(1 for i in fresh if i.status is InstanceStatus.HEALTHY)
    starting = len(fresh) - serving
    start = max(0, wanted - len(fresh))
    if stale:
        start = min(start, max(0, node.maintenance_limit - starting))
    # old instances that do not serve go at once (new ones take their place); serving ones
    # stay while the new generation serves fewer than wanted
    stale_serving = [i for i in stale if i.status is InstanceStatus.HEALTHY]
    stop = [i for i in stale if i.status is not InstanceStatus.HEALTHY]
    stop += _least_useful(stale_serving, len(stale_serving) - max(0, wanted - serving))
    stop += _least_useful(fresh, len(fresh) - wanted)
    return start, stop


def _least_useful(instances: list[Instance], count: int) -> list[Instance]:
    """Instances not serving first, then the newest."""
    if count <= 0:
        return []
    ranked = sorted(instances, key=lambda i: (i.status is InstanceStatus.HEALTHY, -i.created))
    return ranked[:count]
