"""Waiting for a node on the control API's event stream, and telling why it is not `Healthy`.

`node create` and `node update` follow `GET /events?node=NAME&since=SEQ&wait=S` (a long poll)
instead of polling the node (issue 10), and fail with the reason when it does not come up
(issue 15, item 4).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..models import Node
from .api import DeployClient

GIVE_UP_AFTER_S = 5.0  # Unhealthy this long: its instances keep failing
FAILED_STARTS = 3  # instances that failed before they were ever Healthy
LONG_POLL_S = 30  # the most one events request waits (the service caps it at 60)
EVENTS_SHOWN = 8
LOG_LINES_SHOWN = 12


class NodeNotHealthy(Exception):
    """The node did not become `Healthy` (or did not finish its roll); the message says why,
    with its last events and log lines."""

    def __init__(self, message: str, node: dict[str, Any]) -> None:
        super().__init__(message)
        self.node = node

    def _render_traceback_(self) -> list[str]:
        # IPython shows the reason alone: the frames of this package would hide it
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Watch:
    """What the wait has seen of the node's events since it began."""

    since: int = 0
    after: float = 0.0  # events before this (server) time belong to an older node
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))
    healthy: set[str] = field(default_factory=set)  # instances that served (or were Healthy)
    failed: list[str] = field(default_factory=list)  # instances that stopped before that
    strict_failure: str = ""  # the replay event of a strict node that failed it

    def see(self, event: dict[str, Any]) -> None:
        self.since = max(self.since, event["seq"])
        if event["time"] < self.after:
            return
        self.events.append(event)
        instance, status = event["instance"], event["status"]
        if status == "Healthy" and instance:
            self.healthy.add(instance)
        elif status == "Deleting" and instance and instance not in self.healthy \
                and instance not in self.failed:
            self.failed.append(instance)
        if event["message"].startswith("replay failed") and "(strict:" in event["message"]:
            self.strict_failure = event["message"]


def latest_seq(client: DeployClient, name: str) -> int:
    """The sequence number of the node's last event (0: none)."""
    seq = 0
    while True:
        events = client.events(node=name, since=seq)
        if not events:
            return seq
        seq = events[-1]["seq"]


def wait_for_node(client: DeployClient, node: dict[str, Any], timeout_s: float,
                  watch: Watch, rolled_from: set[str] | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The node once it is `Healthy` and no instance of `rolled_from` (the instances before an
    update that rolls) remains; NodeNotHealthy when it fails or the time is up. Progress
    lines (image pulls and builds) go to `progress` as they come."""
    name = node["name"]
    deadline = time.monotonic() + timeout_s
    unhealthy_since: float | None = None
    while True:
        node = client.node(name)
        now = time.monotonic()
        if node["status"] != "Unhealthy":
            unhealthy_since = None
        elif unhealthy_since is None:
            unhealthy_since = now
        remaining = [i["id"] for i in node["instances"] if i["id"] in (rolled_from or ())]
        if node["status"] == "Healthy" and not remaining:
            return node
        why = give_up(node, watch, unhealthy_since, now)
        if why is not None or now >= deadline:
            message = headline(node, why, timeout_s, bool(rolled_from), len(remaining))
            raise NodeNotHealthy(reason(client, node, watch, message), node)
        wait = deadline - now
        if unhealthy_since is not None:
            wait = min(wait, GIVE_UP_AFTER_S - (now - unhealthy_since))
        for event in client.events(node=name, since=watch.since,
                                   wait=min(LONG_POLL_S, max(1, math.ceil(wait)))):
            watch.see(event)
            if progress is not None and _is_progress(event, watch.after):
                progress(event["message"])


def give_up(node: dict[str, Any], watch: Watch, unhealthy_since: float | None,
             now: float) -> str | None:
    """Why waiting longer is pointless, if it is."""
    if node["status"] == "Deleting":
        return "it is being deleted"
    if node.get("strict") and watch.strict_failure:
        return "the replay check failed and the node is strict"
    if len(watch.failed) >= FAILED_STARTS:
        return f"{len(watch.failed)} instances stopped before they were Healthy"
    if unhealthy_since is not None and now - unhealthy_since >= GIVE_UP_AFTER_S:
        return f"Unhealthy for over {GIVE_UP_AFTER_S:g} s"
    return None


def headline(node: dict[str, Any], why: str | None, timeout_s: float, rolling: bool,
             remaining: int) -> str:
    """`node NAME is STATUS: why` (`why` None: the time is up), or for an update that
    rolls, what it did not roll to."""
    name, status = node["name"], node["status"]
    waited = f"{timeout_s:g} s (--timeout {timeout_s:g})"
    if rolling:
        target = node.get("checkpoint") or node.get("image") or "its new settings"
        left = f", {remaining} old instance(s) not replaced" if remaining else ""
        cause = f"within {waited}" if why is None else f"({why})"
        return f"node {name} did not roll to {target} {cause}; it is {status}{left}"
    return f"node {name} is {status}" + (f" after {waited}" if why is None else f": {why}")


def _is_progress(event: dict[str, Any], after: float) -> bool:
    return (event["instance"] is None and event["status"] is None and bool(event["message"])
            and event["time"] >= after)


def reason(client: DeployClient, node: dict[str, Any], watch: Watch, headline: str) -> str:
    """The headline, then the node's last events and log lines."""
    lines = [headline]
    if watch.events:
        lines.append("last events:")
        for event in watch.events:
            when = time.strftime("%H:%M:%S", time.localtime(event["time"]))
            subject = event["instance"] or "node"
            status = f" {event['status']}" if event["status"] else ""
            message = event["message"].replace("\n", "\n    ")
            lines.append(f"  {when} {subject}{status}" + (f": {message}" if message else ""))
    lines += _log_lines(client, node["name"], watch.failed)
    return "\n".join(lines)


def _log_lines(client: DeployClient, name: str, failed: list[str]) -> list[str]:
    """The last lines of the last instance that failed (else of the newest instance)."""
    logs = client.logs(name, tail=4000)
    chosen = [item for item in logs if failed and item["instance"] == failed[-1]] or logs[-1:]
    for item in chosen:
        tail = item["log"].rstrip().splitlines()[-LOG_LINES_SHOWN:]
        if tail:
            return [f"last log lines of {item['instance']}:", *(f"  {line}" for line in tail)]
    return []


def generation(node: dict[str, Any]) -> str:
    """What the node's instances are made from, as the supervisor tells an update that rolls."""
    names = {f.name for f in dataclasses.fields(Node)}
    return Node.from_json({k: v for k, v in node.items() if k in names}).generation
