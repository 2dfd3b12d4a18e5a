"""The Swarm manager's engine as the swarm runtime uses it: connecting, reading tasks and
nodes, creating and removing services. Every function here blocks: callers run them with
`asyncio.to_thread` (issue 14)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ..models import Unavailable
from . import swarm_images
from . import swarm_spec as spec
from .limits import Capacity
from .swarm_spec import TaskView

log = logging.getLogger("jupyter_deploy.swarm")


def look(manager: Any, filters: dict[str, list[str]]) -> dict[str, TaskView]:
    """The newest task of each Swarm service `filters` selects, with the state and address
    of its Swarm node (its ports are left out: they are read once, as an instance is placed)."""
    swarm_nodes = manager.api.nodes()
    down = {n["ID"]: n["Status"]["State"] for n in swarm_nodes if n["Status"]["State"] != "ready"}
    addresses = {n["ID"]: n["Status"].get("Addr", "") for n in swarm_nodes}
    views = {}
    for service, task in spec.latest(manager.api.tasks(filters=filters)).items():
        view = spec.task_view(task, down, 0)
        views[service] = located(view, addresses.get(task.get("NodeID", ""), ""))
    return views


def remove(manager: Any, service_id: str, secrets_filters: dict[str, list[str]]) -> None:
    """The service, then its secrets (Swarm refuses to remove a secret still in use: those
    wait for the next sweep)."""
    import docker

    if service_id:
        with contextlib.suppress(docker.errors.NotFound):
            manager.api.remove_service(service_id)
    for secret in manager.api.secrets(filters=secrets_filters):
        try:
            manager.api.remove_secret(secret["ID"])
        except docker.errors.APIError as exc:
            log.info("secret %s not removed yet: %s", secret["ID"][:12], exc)


def located(view: TaskView, address: str, port: int | None = None) -> TaskView:
    return TaskView(view.state, view.message, view.alive, address,
                    view.port if port is None else port, view.exit_code, view.published)


def task_of(manager: Any, service_id: str, target: int) -> TaskView:
    tasks = manager.api.tasks(filters={"service": service_id})
    task = spec.latest(tasks).get(service_id)
    swarm_nodes = manager.api.nodes()
    down = {n["ID"]: n["Status"]["State"] for n in swarm_nodes if n["Status"]["State"] != "ready"}
    view = spec.task_view(task, down, target)
    address = next((n["Status"].get("Addr", "") for n in swarm_nodes
                    if task is not None and n["ID"] == task.get("NodeID")), "")
    return located(view, address)


def largest(swarm_nodes: list[dict[str, Any]]) -> Capacity:
    """The most CPU and memory one ready Swarm node has: no instance can get more."""
    cpus, memory = 0.0, 0
    for swarm_node in swarm_nodes:
        resources = (swarm_node.get("Description") or {}).get("Resources") or {}
        cpus = max(cpus, resources.get("NanoCPUs", 0) / 1e9)
        memory = max(memory, resources.get("MemoryBytes", 0) >> 20)
    return Capacity(cpus, memory, "the largest Swarm node", "docker node inspect")


def connect_manager(url: str) -> Any:
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=60)
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        raise Unavailable(f"no Swarm manager answers at {url} ({exc})", field="runtime") from None
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise Unavailable(f"the engine at {url} is not a Swarm manager", field="runtime")
    return client


def create_service(manager: Any, service: dict[str, Any], auth: dict[str, str] | None
                    ) -> dict[str, Any]:
    """POST /services/create with registry credentials for Swarm's nodes to pull with (what
    `--with-registry-auth` sends): the node's own, else those `docker login` gave where the
    service runs (the SDK's create_service can send only the latter)."""
    from docker import auth as docker_auth

    api = manager.api
    headers = swarm_images.auth_header(auth)
    if not headers:
        image = service["TaskTemplate"]["ContainerSpec"]["Image"]
        own = docker_auth.get_config_header(api, docker_auth.resolve_repository_name(image)[0])
        if own:
            headers = {"X-Registry-Auth": own.decode() if isinstance(own, bytes) else own}
    result: dict[str, Any] = api._result(
        api._post_json(api._url("/services/create"), data=service, headers=headers), True)
    return result
