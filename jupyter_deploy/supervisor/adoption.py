"""Taking back the process instances a previous start of the service left running (issue 13).

Containers are adopted by label (service/docker_nodes.py); process instances by the record
their runtime keeps (runtimes/identity.py): the same pid and process start time, a worker
of this state folder, answering on its port with its token. An instance its node still
wants (same generation; the node neither being deleted nor suspended) keeps its id, and one
that passes a readiness check serves at once, before the service's first request.

After an upgrade of the package, an instance whose checkpoint this version still reads as
it was read keeps running; any other is adopted and rolled: it serves until a new instance
replaces it, with at most the node's `maintenance_limit` starting at once (autoscale.plan).
Every other stored process instance ended with the previous service, or is stopped by the
runtime's sweep that follows.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .. import __version__
from ..models import Instance, InstanceStatus, Node
from .health import healthy

if TYPE_CHECKING:
    from .loop import Supervisor

ROLLED = "/read before an upgrade"  # a generation the node no longer has: plan() rolls it


async def adopt_processes(supervisor: Supervisor) -> None:
    """Adopt every stored process instance still running as this folder's; forget the rest."""
    began = asyncio.get_running_loop().time()
    stored = [(node, instance) for node in list(supervisor.nodes.values())
              for instance in supervisor.store.instances(node.name)
              if instance.runtime == "process"]
    results = await asyncio.gather(*(_take_back(supervisor, node, instance)
                                     for node, instance in stored), return_exceptions=True)
    for (_, instance), taken in zip(stored, results, strict=True):
        if isinstance(taken, BaseException):
            supervisor.log.error("adopting %s failed", instance.id, exc_info=taken)
        if taken is not True:
            supervisor.store.save_instance(instance, removed=True)
    if stored:  # how long a restart keeps instances out of balancing, at most
        supervisor.log.info("jupyter_deploy: adopted %d of %d stored process instance(s) in "
                            "%.0f ms", results.count(True), len(stored),
                            (asyncio.get_running_loop().time() - began) * 1000)


async def _take_back(supervisor: Supervisor, node: Node, instance: Instance) -> bool:
    """Adopt one stored instance if its node wants it and its process is still its own."""
    if node.deleting or node.suspended or instance.generation != node.generation or \
            instance.status is InstanceStatus.DELETING:
        return False
    reclaimed = await supervisor.runtime.reclaim(
        node, instance, supervisor.store.checkpoint_dir(instance.checkpoint_id))
    if reclaimed is None:
        return False
    message = f"adopted pid {instance.pid} on port {instance.port} after a restart"
    if reclaimed.package != __version__:
        message += f"; started by jupyter_deploy {reclaimed.package}, now {__version__}"
    if reclaimed.readable:
        message += "" if reclaimed.package == __version__ else ": its checkpoint still " \
            "reads, kept"
    else:
        instance.generation += ROLLED
        message += ": its checkpoint does not read as it did, so it is replaced (rolled)"
    ready = await healthy(node, instance, node.health.timeout_s)
    supervisor.adopt(node, instance, message, ready=ready)
    return True


def stop_reason(node: Node, instance: Instance) -> str:
    """Why the plan stops an instance: a scale-down, an update, or an upgrade's roll."""
    if instance.generation == node.generation:
        return "scaled down"
    if instance.generation == node.generation + ROLLED:
        return "replaced after an upgrade of jupyter_deploy"
    return "replaced by the updated node"
