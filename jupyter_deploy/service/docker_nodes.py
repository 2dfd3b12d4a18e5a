"""What the deploy service does for nodes in containers: checks before one is created, and
adoption of the containers a previous start of the service left running."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..models import DeployError, HealthCheck, Instance, InvalidInput, Node
from ..runtimes.base import Runtimes
from ..runtimes.docker import DockerRuntime, generation_label
from ..runtimes.process import ProcessRuntime
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor
from .validation.containers import apply, check_image, container_settings
from .validation.nodes import apply_node_settings


def runtimes(store: Store, base_image: str, configs: dict[str, dict[str, Any]],
             busy_limit_s: float, keep_containers: bool, note: Callable[[str, str], None],
             log: logging.Logger, log_max_bytes: int, log_files: int
             ) -> tuple[DockerRuntime, Runtimes]:
    """The service's runtimes: its docker runtime, and all of them by name."""
    docker = DockerRuntime(store.root, base_image, configs, store.secrets, note=note,
                           busy_limit_s=busy_limit_s, keep_containers=keep_containers, log=log,
                           log_max_bytes=log_max_bytes, log_files=log_files)
    process = ProcessRuntime(store.root / "logs", busy_limit_s=busy_limit_s,
                             log_max_bytes=log_max_bytes, log_files=log_files, configs=configs,
                             secrets=store.secrets)
    return docker, Runtimes({"process": process, "docker": docker})


def image_node(name: str, runtime: str, body: dict[str, Any], key_hash: str) -> Node:
    """A new Docker-image node (its settings not applied yet)."""
    if runtime != "docker":
        raise InvalidInput("a Docker-image node runs on the docker runtime", field="runtime")
    if "checkpoint" in body:
        raise InvalidInput("a node runs a checkpoint or an image, not both", field="image")
    return Node(name=name, checkpoint_id="", checkpoint="", runtime=runtime,
                image=check_image(body["image"]), key_hash=key_hash,
                health=HealthCheck(interval_s=15.0, path="/"))  # the seed's defaults


def configure(node: Node, body: dict[str, Any], configs: dict[str, dict[str, Any]],
              stored: dict[str, str] | None) -> dict[str, str] | None:
    """Apply `body`'s settings to the node, all or nothing; the secrets to store, if they
    change. `stored`: the node's secrets now (None at creation)."""
    creating = stored is None
    changes, secrets = container_settings(node, body, configs, creating, stored)
    apply_node_settings(node, body, creating=creating)
    apply(node, changes)
    return secrets


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
    generation); remove the others. Every other stored instance ended with the service."""
    stored: dict[str, Instance] = {}
    for node in store.nodes():
        for instance in store.instances(node.name):
            if instance.runtime == "docker" and instance.container_id:
                stored[instance.container_id] = instance
            else:
                store.save_instance(instance, removed=True)
    try:
        containers = await docker.running()
    except DeployError:  # no engine: nothing to adopt, nothing to clean
        if stored:
            log.warning("jupyter_deploy: no Docker engine answers: %d container(s) of docker "
                        "nodes cannot be adopted", len(stored))
        containers = []
    for container in containers:
        instance = stored.pop(container["id"], None)
        node = supervisor.nodes.get(container["labels"].get("jupyter-deploy.node", ""))
        if (instance is not None and node is not None and container["running"]
                and not node.deleting and not node.suspended
                and instance.generation == node.generation
                and container["labels"].get("jupyter-deploy.generation")
                == generation_label(node)):
            await docker.adopt(instance)
            supervisor.adopt(node, instance)
        else:
            await docker.remove(container["id"])
            if instance is not None:
                store.save_instance(instance, removed=True)
    for instance in stored.values():  # their containers are gone
        store.save_instance(instance, removed=True)
