"""The instance life cycle as a table, and the pure decisions the supervisor makes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..models import HealthCheck
from ..models import InstanceStatus as S


class Event(StrEnum):
    SPAWNED = "spawned"          # the process or container exists
    CONNECTED = "connected"      # it answered its first liveness check
    RESTORING = "restoring"      # it is restoring the pinned state
    READY = "ready"              # it passed its first readiness check
    FAILING = "failing"          # fail_threshold checks failed in a row
    RECOVERED = "recovered"      # pass_threshold checks passed in a row
    EXITED = "exited"            # the process or container ended on its own
    STOP = "stop"                # the supervisor takes it down
    ADOPTED = "adopted"          # still running and ready after a restart of the service


TRANSITIONS = {
    (S.UNDEFINED, Event.SPAWNED): S.CREATED,
    (S.CREATED, Event.CONNECTED): S.STARTED,
    (S.STARTED, Event.RESTORING): S.PREPARING,
    (S.PREPARING, Event.READY): S.HEALTHY,
    (S.HEALTHY, Event.FAILING): S.UNHEALTHY,
    (S.HEALTHY, Event.EXITED): S.UNHEALTHY,
    (S.UNHEALTHY, Event.RECOVERED): S.HEALTHY,
    (S.UNDEFINED, Event.ADOPTED): S.HEALTHY,
}


def next_status(status: S, event: Event) -> S | None:
    """Where `event` takes an instance in `status`; None when it does not apply."""
    if event is Event.STOP:
        return None if status is S.DELETING else S.DELETING
    return TRANSITIONS.get((status, event))


def restart_delay(failures: int) -> float:
    """Back off when instances keep failing before they ever become healthy."""
    return 0.0 if failures == 0 else min(30.0, 0.5 * 2 ** (failures - 1))


@dataclass
class Checks:
    """Consecutive health-check results of one instance."""

    next_at: float = 0.0
    passes: int = 0
    fails: int = 0
    unhealthy_since: float = 0.0


def after_check(checks: Checks, ok: bool, status: S, health: HealthCheck, now: float
                ) -> Event | None:
    """Count one health check's result at `now`; the event it completes, if any."""
    checks.next_at = now + health.interval_s
    if ok:
        checks.passes, checks.fails = checks.passes + 1, 0
        if status is S.UNHEALTHY and checks.passes >= health.pass_threshold:
            return Event.RECOVERED
        return None
    checks.passes, checks.fails = 0, checks.fails + 1
    if status is S.HEALTHY and checks.fails >= health.fail_threshold:
        checks.unhealthy_since = now
        return Event.FAILING
    return None


def replace_due(checks: Checks, status: S, health: HealthCheck, now: float) -> bool:
    """Whether an instance has been Unhealthy too long to wait for it to recover."""
    return status is S.UNHEALTHY and now - checks.unhealthy_since > health.replace_after_s
