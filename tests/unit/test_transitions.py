"""The instance life cycle, the restart back-off and the health-check counting, as
functions; time is a fake clock passed in."""

from __future__ import annotations

import itertools

import pytest

from jupyter_deploy.models import HealthCheck
from jupyter_deploy.models import InstanceStatus as S
from jupyter_deploy.supervisor.transitions import (
    Checks,
    Event,
    after_check,
    next_status,
    replace_due,
    restart_delay,
)

MOVES = {
    (S.UNDEFINED, Event.SPAWNED): S.CREATED,
    (S.CREATED, Event.CONNECTED): S.STARTED,
    (S.STARTED, Event.RESTORING): S.PREPARING,
    (S.PREPARING, Event.READY): S.HEALTHY,
    (S.HEALTHY, Event.FAILING): S.UNHEALTHY,
    (S.HEALTHY, Event.EXITED): S.UNHEALTHY,
    (S.UNHEALTHY, Event.RECOVERED): S.HEALTHY,
    (S.UNDEFINED, Event.ADOPTED): S.HEALTHY,  # running and ready after a restart (issue 13)
    **{(status, Event.STOP): S.DELETING for status in S if status is not S.DELETING},
}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(S, Event)))
def test_next_status(status, event):
    """Every (status, event) pair: the moves above, and nothing else moves."""
    assert next_status(status, event) is MOVES.get((status, event))


@pytest.mark.parametrize(("failures", "delay"), [
    (0, 0.0), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (100, 30.0)])
def test_restart_delay_doubles_up_to_30_s(failures, delay):
    assert restart_delay(failures) == delay


HEALTH = HealthCheck(interval_s=2.0, fail_threshold=3, pass_threshold=2, replace_after_s=30.0)


@pytest.mark.parametrize(("case", "status", "results", "events"), [
    ("failing checks mark it Unhealthy at the threshold", S.HEALTHY,
     [False, False, False], [None, None, Event.FAILING]),
    ("a pass resets the count", S.HEALTHY,
     [False, False, True, False, False], [None] * 5),
    ("passing checks recover it at the threshold", S.UNHEALTHY,
     [True, False, True, True], [None, None, None, Event.RECOVERED]),
    ("a healthy instance passing stays", S.HEALTHY, [True] * 4, [None] * 4),
    ("checks before it is in balancing change nothing", S.PREPARING,
     [False] * 4, [None] * 4),
])
def test_after_check(case, status, results, events):
    checks, seen = Checks(), []
    for step, ok in enumerate(results):
        now = 100.0 + step * HEALTH.interval_s
        seen.append(after_check(checks, ok, status, HEALTH, now))
        assert checks.next_at == now + HEALTH.interval_s  # the next check is one interval on
    assert seen == events, case


def test_unhealthy_since_and_replacement_on_a_fake_clock():
    checks = Checks()
    for now in (10.0, 12.0, 14.0):
        event = after_check(checks, False, S.HEALTHY, HEALTH, now)
    assert event is Event.FAILING and checks.unhealthy_since == 14.0
    assert not replace_due(checks, S.UNHEALTHY, HEALTH, 44.0)  # exactly replace_after_s
    assert replace_due(checks, S.UNHEALTHY, HEALTH, 44.1)
    assert not replace_due(checks, S.HEALTHY, HEALTH, 1e9)  # recovered: never replaced
