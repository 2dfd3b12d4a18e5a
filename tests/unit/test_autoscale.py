"""The scaling policy and the roll plan, as functions: a fake clock, tables of cases."""

from __future__ import annotations

import pytest

from jupyter_deploy.models import Autoscale, Instance, InstanceStatus, Node
from jupyter_deploy.supervisor.autoscale import Samples, desired_instances, plan, window

NOW = 1000.0  # the fake clock: every sample is placed relative to it


def node(min: int = 1, max: int = 5, target: float = 1.0, suspended: bool = False) -> Node:
    return Node(name="n", checkpoint_id="c1", checkpoint="c@1", min=min, max=max,
                suspended=suspended,
                autoscale=Autoscale(target_concurrency=target, up_delay_s=1.0, down_delay_s=30.0))


def load(*spans: tuple[float, float, int]) -> Samples:
    """Samples every 0.25 s: each span is (from seconds ago, to seconds ago, load)."""
    samples = []
    for start, end, value in spans:
        t = NOW - start
        while t <= NOW - end + 1e-9:
            samples.append((t, value))
            t += 0.25
    return samples


@pytest.mark.parametrize(("case", "rule", "previous", "samples", "wanted"), [
    ("suspended: none", node(suspended=True), 3, load((5, 0, 9)), 0),
    ("no samples: as before", node(), 3, [], 3),
    ("no samples: at least min", node(min=2), 0, [], 2),
    ("no samples: at most max", node(), 9, [], 5),
    ("a burst shorter than up_delay_s", node(), 1, load((0.5, 0, 3)), 1),
    ("demand held for up_delay_s", node(), 1, load((1.5, 0, 3)), 3),
    ("demand that dipped within up_delay_s", node(), 1, load((1.5, 0.5, 3), (0.25, 0.25, 1),
                                                              (0, 0, 3)), 1),
    ("up to what the lowest recent load needs", node(), 1, load((1.5, 0.5, 4), (0.25, 0, 2)), 2),
    ("never above max", node(), 1, load((2, 0, 50)), 5),
    ("target concurrency divides the load", node(target=4), 1, load((2, 0, 10)), 3),
    ("idle shorter than down_delay_s", node(), 3, load((10, 0, 0)), 3),
    ("idle for down_delay_s: down to min", node(), 3, load((31, 0, 0)), 1),
    ("down to the highest load of the window", node(), 4, load((31, 5, 1), (4.75, 0, 2)), 2),
    ("from zero at the first request", node(min=0), 0, load((0, 0, 2)), 2),
    ("from zero: one at least", node(min=0, target=10), 0, load((0, 0, 1)), 1),
    ("scale to zero when idle long enough", node(min=0), 2, load((31, 0, 0)), 0),
])
def test_desired_instances(case, rule, previous, samples, wanted):
    assert desired_instances(rule, previous, samples, NOW) == wanted, case


def test_window_keeps_what_the_longest_delay_needs():
    samples = load((40, 0, 1))
    kept = window(samples, node(), NOW)
    assert kept[0][0] >= NOW - 31.0 and kept[-1] == samples[-1]
    assert len(kept) == len([s for s in samples if s[0] >= NOW - 31.0])
    # with what is kept, the decision is the same as with everything
    assert desired_instances(node(), 3, kept, NOW) == desired_instances(node(), 3, samples, NOW)


def instance(id: str, status: InstanceStatus, fresh: bool = True, created: float = 0.0
             ) -> Instance:
    return Instance(id=id, node="n", status=status, created=created,
                    generation=node().generation if fresh else "old")


H, P = InstanceStatus.HEALTHY, InstanceStatus.PREPARING


@pytest.mark.parametrize(("case", "active", "wanted", "limit", "start", "stop"), [
    ("nothing yet", [], 2, 1, 2, []),
    ("as wanted", [instance("a", H), instance("b", H)], 2, 1, 0, []),
    ("scale down: the newest go", [instance("a", H, created=1), instance("b", H, created=2),
                                   instance("c", H, created=3)], 1, 1, 0, ["c", "b"]),
    ("scale down: not serving goes first", [instance("a", H, created=1),
                                            instance("b", P, created=0)], 1, 1, 0, ["b"]),
    ("roll starts within the maintenance limit", [instance("o1", H, False),
                                                  instance("o2", H, False)], 2, 1, 1, []),
    ("roll: a wider limit starts more", [instance("o1", H, False),
                                         instance("o2", H, False)], 2, 2, 2, []),
    ("roll: one new serves, one old goes", [instance("n1", H), instance("o1", H, False, 1),
                                            instance("o2", H, False, 2)], 2, 1, 1, ["o2"]),
    ("roll: waits while a new one starts", [instance("n1", P), instance("o1", H, False),
                                            instance("o2", H, False)], 2, 1, 0, []),
    ("roll: old ones not serving go at once", [instance("o1", P, False),
                                               instance("o2", H, False)], 2, 1, 1, ["o1"]),
    ("roll done: the last old one goes", [instance("n1", H), instance("n2", H),
                                          instance("o1", H, False)], 2, 1, 0, ["o1"]),
])
def test_plan(case, active, wanted, limit, start, stop):
    rule = node()
    rule.maintenance_limit = limit
    starts, stops = plan(rule, active, wanted)
    assert (starts, [i.id for i in stops]) == (start, stop), case
