"""What the deploy service does for nodes in containers: its runtimes (the one a node runs on
when it names none), checks against the engine or the Swarm before one is created, and
adoption of the containers and Swarm services a previous start left running."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..models import DeployError, Instance, InvalidInput, Node
from ..runtimes.base import Runtime, Runtimes
from ..runtimes.docker import DockerRuntime, generation_label
from ..runtimes.lease import LEASE_GRACE_S
from ..runtimes.process import ProcessRuntime
from ..runtimes.swarm import SwarmRuntime
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor

ADOPTED = ("docker", "swarm")  # the runtimes whose instances outlive the service


def runtimes(store: Store, base_image: str, configs: dict[str, dict[str, Any]],
             busy_limit_s: float, keep_containers: bool, note: Callable[[str, str], None],
             log: logging.Logger, log_max_bytes: int, log_files: int,
             public_key: bytes = b"", interpreters: dict[str, str] | None = None,
             keep_instances: bool = False, lease_grace_s: float = LEASE_GRACE_S,
             swarm: dict[str, Any] | None = None, default_runtime: str = "process"
             ) -> tuple[DockerRuntime, Runtimes]:
    """The service's runtimes: its docker runtime, and all of them by name. `swarm`: the
    swarm runtime's settings (manager, registry, pull_registry), when it has a manager."""
    docker = DockerRuntime(store.root, base_image, configs, store.secrets, note=note,
                           busy_limit_s=busy_limit_s, keep_containers=keep_containers, log=log,
                           log_max_bytes=log_max_bytes, log_files=log_files,
                           public_key=public_key)
    process = ProcessRuntime(store.root / "logs", busy_limit_s=busy_limit_s,
                             log_max_bytes=log_max_bytes, log_files=log_files, configs=configs,
                             secrets=store.secrets, public_key=public_key,
                             interpreters=interpreters, keep_instances=keep_instances,
                             lease_grace_s=lease_grace_s, log=log)
    every: dict[str, Runtime] = {"process": process, "docker": docker}
    if swarm and swarm.get("manager"):
        every["swarm"] = SwarmRuntime(
            store.root, swarm["manager"], swarm.get("registry", ""), configs, store.secrets,
            note=note, base_image=base_image, pull_registry=swarm.get("pull_registry", ""),
            busy_limit_s=busy_limit_s, public_key=public_key, keep_services=keep_containers,
            log=log, log_max_bytes=log_max_bytes, log_files=log_files)
    if default_runtime not in every:
        raise ValueError(f"default_runtime {default_runtime!r}: one of {', '.join(every)}"
                         + ("" if default_runtime != "swarm" else
                            " (the swarm runtime needs c.DeployApp.swarm_manager)"))
    return docker, Runtimes(every, default_runtime)


async def check_node(runtimes: Runtimes, node: Node, secrets: dict[str, str],
                     checkpoint: dict[str, Any] | None) -> None:
    """Refuse a node in containers that cannot run, before anything of it exists."""
    if node.runtime == "swarm":
        swarm = runtimes.runtimes.get("swarm")
        if not isinstance(swarm, SwarmRuntime):
            raise InvalidInput("this service has no Swarm: set c.DeployApp.swarm_manager "
                               "(docs/swarm.md)", field="runtime")
        await swarm.check(node, secrets)
        return
    docker = runtimes.runtimes["docker"]
    assert isinstance(docker, DockerRuntime)
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


async def adopt(store: Store, supervisor: Supervisor, runtimes: Runtimes,
                log: logging.Logger) -> None:
    """Take back this service's running containers and Swarm services that a node still
    wants (the same generation); remove the others. Process instances are the supervisor's
    to adopt (supervisor/adoption.py); every other stored instance ended with the service."""
    stored: dict[str, dict[str, Instance]] = {name: {} for name in ADOPTED}
    for node in store.nodes():
        for instance in store.instances(node.name):
            if instance.runtime in stored and instance.container_id:
                stored[instance.runtime][instance.container_id] = instance
            elif instance.runtime != "process":
                store.save_instance(instance, removed=True)
    for name, instances in stored.items():
        runtime = runtimes.runtimes.get(name)
        if isinstance(runtime, (DockerRuntime, SwarmRuntime)):
            await _adopt(store, supervisor, runtime, instances, log)
        elif instances:
            log.warning("jupyter_deploy: %d instance(s) ran on the %s runtime, which this "
                        "service no longer has: their services are left as they are",
                        len(instances), name)
        for instance in instances.values():  # their containers or services are gone
            store.save_instance(instance, removed=True)


async def _adopt(store: Store, supervisor: Supervisor, runtime: DockerRuntime | SwarmRuntime,
                 stored: dict[str, Instance], log: logging.Logger) -> None:
    """Adopt or remove each of the runtime's containers (or services); what is adopted
    leaves `stored`."""
    try:
        found = await runtime.running()
    except DeployError:  # no engine: nothing to adopt, nothing to clean
        if stored:
            log.warning("jupyter_deploy: no %s engine answers: %d instance(s) cannot be "
                        "adopted", runtime.name, len(stored))
        return
    for container in found:
        taken = stored.pop(container["id"], None)
        labels = container["labels"]
        wanted = supervisor.nodes.get(labels.get("jupyter-deploy.node", ""))
        if (taken is not None and wanted is not None and container["running"]
                and not wanted.deleting and not wanted.suspended
                and taken.generation == wanted.generation
                and labels.get("jupyter-deploy.generation") == generation_label(wanted)):
            if isinstance(runtime, SwarmRuntime):
                await runtime.adopt(wanted, taken)
            else:
                await runtime.adopt(taken)
            supervisor.adopt(wanted, taken)
            continue
        if isinstance(runtime, SwarmRuntime):
            await runtime.remove(container["id"], labels.get("jupyter-deploy.instance", ""))
        else:
            await runtime.remove(container["id"])
        if taken is not None:
            store.save_instance(taken, removed=True)
