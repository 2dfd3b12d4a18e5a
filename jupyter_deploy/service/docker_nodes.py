"""What the deploy service does for nodes in containers: its runtimes, checks against the
engine before one is created, and adoption of the containers a previous start left running."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..models import DeployError, Instance, InvalidInput, Node
from ..runtimes.base import Runtimes
from ..runtimes.docker import DockerRuntime, generation_label
from ..runtimes.lease import LEASE_GRACE_S
from ..runtimes.process import ProcessRuntime
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor


def runtimes(store: Store, base_image: str, configs: dict[str, dict[str, Any]],
             busy_limit_s: float, keep_containers: bool, note: Callable[[str, str], None],
             log: logging.Logger, log_max_bytes: int, log_files: int,
             public_key: bytes = b"", interpreters: dict[str, str] | None = None,
             keep_instances: bool = False, lease_grace_s: float = LEASE_GRACE_S
             ) -> tuple[DockerRuntime, Runtimes]:
    """The service's runtimes: its docker runtime, and all of them by name."""
    docker = DockerRuntime(store.root, base_image, configs, store.secrets, note=note,
                           busy_limit_s=busy_limit_s, keep_containers=keep_containers, log=log,
                           log_max_bytes=log_max_bytes, log_files=log_files,
                           public_key=public_key)
    process = ProcessRuntime(store.root / "logs", busy_limit_s=busy_limit_s,
                             log_max_bytes=log_max_bytes, log_files=log_files, configs=configs,
                             secrets=store.secrets, public_key=public_key,
                             interpreters=interpreters, keep_instances=keep_instances,
                             lease_grace_s=lease_grace_s, log=log)
    return docker, Runtimes({"process": process, "docker": docker})


async def check_node(docker: DockerRuntime, node: Node, secrets: dict[str, str],
                     checkpoint: dict[str, Any] | None) -> None:
    """Refuse a docker node that cannot run, before anything of it exists."""
    if node.health.protocol == "grpc":
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise InvalidInput("health.protocol grpc needs the grpcio package where the "
                               "deploy service runs", field="health.protocol") from None
    await docker.check(node, secrets)
    if checkpoint is not None:
        python = checkpoint["environment"].get("python", "")
        problem = await docker.check_python(node, python) if python else None
        if problem:
            raise InvalidInput(problem, field="base_image")


async def adopt(store: Store, supervisor: Supervisor, docker: DockerRuntime,
                log: logging.Logger) -> None:
    """Take back this service's running containers that a node still wants (the same
    generation); remove the others. Process instances are the supervisor's to adopt
    (supervisor/adoption.py); every other stored instance ended with the service."""
    stored: dict[str, Instance] = {}
    for node in store.nodes():
        for instance in store.instances(node.name):
            if instance.runtime == "docker" and instance.container_id:
                stored[instance.container_id] = instance
            elif instance.runtime != "process":
                store.save_instance(instance, removed=True)
    try:
        containers = await docker.running()
    except DeployError:  # no engine: nothing to adopt, nothing to clean
        if stored:
            log.warning("jupyter_deploy: no Docker engine answers: %d container(s) of docker "
                        "nodes cannot be adopted", len(stored))
        containers = []
    for container in containers:
        taken = stored.pop(container["id"], None)
        wanted = supervisor.nodes.get(container["labels"].get("jupyter-deploy.node", ""))
        if (taken is not None and wanted is not None and container["running"]
                and not wanted.deleting and not wanted.suspended
                and taken.generation == wanted.generation
                and container["labels"].get("jupyter-deploy.generation")
                == generation_label(wanted)):
            await docker.adopt(taken)
            supervisor.adopt(wanted, taken)
        else:
            await docker.remove(container["id"])
            if taken is not None:
                store.save_instance(taken, removed=True)
    for instance in stored.values():  # their containers are gone
        store.save_instance(instance, removed=True)
