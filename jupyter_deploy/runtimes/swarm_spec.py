"""What the swarm runtime asks of Swarm and how it reads the answers, as pure functions: the
service spec of an instance, what Swarm cannot do, and a task's state as the supervisor
sees it (issue 14)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import InvalidInput, Node
from .limits import Limits

LABEL = "jupyter-deploy"
WORKER_PORT = 8080  # where a checkpoint's worker listens inside its container
TOKEN_FILE = "jupyter-deploy-token"  # the instance's token, among its secrets
SECRETS_DIR = "/run/secrets"
# Task states after which the task never runs again (Swarm's own words).
GONE = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
# Generic resources a Swarm node may advertise for GPUs (dockerd --node-generic-resource).
GPU_KINDS = ("gpu", "nvidia-gpu", "nvidia.com/gpu")


@dataclass(frozen=True)
class TaskView:
    """An instance's task as the supervisor needs it."""

    state: str  # pending, assigned, preparing, starting, running, failed, ...
    message: str  # Swarm's own words: "started", "no suitable node ...", the error
    alive: bool  # may still run (or is running): not gone, on a node that is not down
    address: str = ""  # its Swarm node's address
    port: int = 0  # the host-mode port Swarm chose for the instance's port
    exit_code: int | None = None
    published: tuple[tuple[int, int], ...] = ()  # (container port, host port) of each

    def port_of(self, target: int) -> int:
        """The host port Swarm published container port `target` on (0: none)."""
        return dict(self.published).get(target, 0)


def refuse(node: Node, limits: Limits, gpus_advertised: int) -> None:
    """Refuse what Swarm cannot give an instance, naming the setting (a 422 up front)."""
    if limits.disk_mb:
        raise InvalidInput("the swarm runtime cannot limit an instance's disk (Swarm has no "
                           "storage limits): leave disk_mb unset", field="disk_mb")
    if limits.gpus and not gpus_advertised:
        raise InvalidInput(f"the configuration asks for {limits.gpus} GPU(s) and no Swarm node "
                           "advertises GPUs as generic resources (dockerd "
                           "--node-generic-resource gpu=...)", field="config")
    for constraint in node.placement:
        if not any(op in constraint for op in ("==", "!=")):
            raise InvalidInput(f"placement {constraint!r}: a constraint is KEY==VALUE or "
                               "KEY!=VALUE, e.g. node.labels.zone==b", field="placement")


def gpus_of(swarm_nodes: list[dict[str, Any]]) -> int:
    """The most GPUs one Swarm node advertises as generic resources."""
    most = 0
    for swarm_node in swarm_nodes:
        resources = ((swarm_node.get("Description") or {}).get("Resources") or {})
        count = 0
        for resource in resources.get("GenericResources") or []:
            for spec in resource.values():
                if str(spec.get("Kind", "")).lower() in GPU_KINDS:
                    count += int(spec.get("Value", 1))
        most = max(most, count)
    return most


def resources(limits: Limits) -> dict[str, Any]:
    """Limits and reservations from the instance configuration: Swarm places an instance only
    where what it reserves is free, and the limit keeps it there."""
    limit: dict[str, Any] = {}
    if limits.cpus:
        limit["NanoCPUs"] = int(limits.cpus * 1e9)
    if limits.memory_mb:
        limit["MemoryBytes"] = limits.memory_mb << 20
    reserve = dict(limit)
    if limits.gpus:
        reserve["GenericResources"] = [{"DiscreteResourceSpec": {"Kind": "gpu",
                                                                 "Value": limits.gpus}}]
    return {"Limits": limit, "Reservations": reserve}


def ports_of(node: Node) -> list[int]:
    """The container ports an instance publishes: where it serves, and its health and
    telemetry ports when they are others."""
    inner = node.port if node.from_image else WORKER_PORT
    ports = [inner]
    for extra in (node.health.port, (node.telemetry or {}).get("port", 0)):
        if extra and extra not in ports:
            ports.append(extra)
    return ports


def service_spec(node: Node, instance_id: str, name: str, image: str, labels: dict[str, str],
                 env: dict[str, str], args: list[str], user: str, limits: Limits,
                 secrets: list[dict[str, Any]]) -> dict[str, Any]:
    """One instance as one Swarm service: one replica, never restarted by Swarm, no Swarm
    healthcheck (the supervisor owns health and replacement: Swarm's restarts would fight
    it), every port published in host mode on a port Swarm chooses."""
    container: dict[str, Any] = {
        "Image": image, "Labels": labels, "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "User": user, "Init": True, "Secrets": secrets,
        "Healthcheck": {"Test": ["NONE"]},  # an image's own HEALTHCHECK would kill it
    }
    if args:
        container["Args"] = args
    return {
        "Name": name, "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": container, "Resources": resources(limits),
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {"Constraints": list(node.placement)},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": port, "PublishMode": "host"}
            for port in ports_of(node)]},
    }


def task_view(task: dict[str, Any] | None, down: dict[str, str], target: int) -> TaskView:
    """The task's state; `down` maps the Swarm nodes that are not ready to their state, and
    `target` is the container port whose published port the instance is reached on."""
    if task is None:
        return TaskView("pending", "waiting for Swarm to make a task", True)
    status = task.get("Status") or {}
    state = status.get("State", "pending")
    message = status.get("Err") or status.get("Message") or state
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    node_id = task.get("NodeID", "")
    if node_id in down and state not in GONE:
        return TaskView(state, f"its Swarm node is {down[node_id]}", False, exit_code=code)
    published = tuple(sorted({(int(p.get("TargetPort") or 0), int(p.get("PublishedPort") or 0))
                              for p in (status.get("PortStatus") or {}).get("Ports") or []}))
    alive = state not in GONE and task.get("DesiredState", "running") == "running"
    return TaskView(state, message, alive, port=dict(published).get(target, 0),
                    exit_code=code if state in GONE else None, published=published)


def latest(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each service's newest task (a service of one replica that Swarm never restarts has
    one, but a lost node's task is replaced by Swarm's reconciler)."""
    newest: dict[str, dict[str, Any]] = {}
    for task in tasks:
        service = task.get("ServiceID", "")
        if service not in newest or task.get("CreatedAt", "") > newest[service].get("CreatedAt", ""):
            newest[service] = task
    return newest
