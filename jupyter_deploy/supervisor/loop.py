"""The supervisor: one reconcile loop that keeps every node's instances as wanted.

Each pass checks and returns; anything that takes time (starting an instance, a health
check, draining and stopping) runs as a task of its own, one at a time per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from ..gateway.routing import Backend, Routes
from ..models import Instance, InstanceStatus, Node, NodeStatus, node_status
from ..runtimes.base import Runtime
from ..store.sqlite import Store
from ..types import InputCheck
from ..worker.verify import REFUSED_EXIT, refusal
from .adoption import adopt_processes, stop_reason
from .autoscale import Samples, desired_instances, plan, window
from .health import healthy
from .replay import Replays
from .startup import Startup
from .stuck import STUCK_STOP_S, watch_stuck
from .transitions import Checks, Event, after_check, next_status, replace_due, restart_delay

NO_INPUTS = InputCheck([])  # what a Docker-image node's requests are checked against


class Supervisor:
    """Keeps every node's instances as wanted; `Startup` brings each one up, and reports
    back through the `Lifecycle` methods (`transition`, `failed`, `begin_stop`, `admitted`)."""

    def __init__(self, store: Store, runtime: Runtime, routes: Routes,
                 input_check: Callable[[str], InputCheck], *,
                 period_s: float = 0.2, startup_timeout_s: float = 60.0,
                 drain_timeout_s: float = 15.0, stop_timeout_s: float = 5.0,
                 replay_timeout_s: float = 15.0, log: logging.Logger | None = None) -> None:
        self.store = store
        self.runtime = runtime
        self.routes = routes
        self.input_check = input_check  # checkpoint id -> the check of its declared inputs
        self.period_s = period_s
        self.drain_timeout_s = drain_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log = log or logging.getLogger("jupyter_deploy.supervisor")
        self.nodes: dict[str, Node] = {}
        self.instances: dict[str, dict[str, Instance]] = {}
        self.node_statuses: dict[str, NodeStatus] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._checks: dict[str, Checks] = {}
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._gone: dict[str, asyncio.Event] = {}
        self.wanted: dict[str, int] = {}  # instances each node wants now (autoscaling)
        self._load: dict[str, Samples] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.replays = Replays(store, self._emit, replay_timeout_s, runtime.token)
        routes.on_stuck.append(self._stuck)
        self.startup = Startup(runtime, store.checkpoint_dir, self.replays, self,
                               startup_timeout_s, self.log)

    # life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await adopt_processes(self)  # serving again before the first request, then
        await self.runtime.sweep()  # the workers of a service killed or not adopted
        self._loop_task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop and every instance it started."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        doomed = [(self.nodes[n], i) for n, group in self.instances.items()
                  for i in group.values() if not self._detached(self.nodes[n], i)]
        await asyncio.gather(*(self._remove(node, i, drain=False) for node, i in doomed),
                             return_exceptions=True)
        for gone in self._gone.values():  # a deletion waiting on us ends with the service
            gone.set()
        await self.runtime.close()

    def _detached(self, node: Node, instance: Instance) -> bool:
        """Left running for the next start to adopt (healthy containers of live nodes)."""
        return (not node.deleting and instance.status is InstanceStatus.HEALTHY
                and self.runtime.detach(instance))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            for node in list(self.nodes.values()):
                try:
                    self.reconcile(node)
                except Exception:  # one bad node must not stop the loop
                    self.log.exception("reconcile %s failed", node.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.period_s)
            self._wake.clear()

    # nodes --------------------------------------------------------------------------------

    def add_node(self, node: Node, is_new: bool) -> None:
        self.nodes[node.name] = node
        self.instances[node.name] = {}
        self.routes.add_node(node.name, node.key_hash)
        self.wanted[node.name] = node.min
        self._load[node.name] = []
        self._configure_route(node)
        if is_new:
            self._update_node_status(node)
        else:
            self.node_statuses[node.name] = node_status(node, [])
        self._wake.set()

    def update_node(self, node: Node) -> None:
        """Apply changed settings; instances of an older generation roll."""
        self.store.save_node(node)
        self.wanted[node.name] = max(node.min, min(node.max, self.wanted[node.name]))
        self._configure_route(node)
        self._update_node_status(node)
        self._wake.set()

    def _configure_route(self, node: Node) -> None:
        route = self.routes.nodes[node.name]
        route.sticky, route.capture = node.sticky, node.capture
        route.passthrough, route.protocol = node.from_image, node.protocol
        route.timeout_s, route.idle_timeout_s = node.session_timeout_s, node.idle_timeout_s
        route.configure_admission(node.autoscale.target_concurrency, node.max_queue)
        route.configure_batch(node.batch)
        route.expose_tracebacks = node.expose_tracebacks
        route.hold = node.min == 0 and not node.suspended
        if not route.hold:
            self.routes.wake(route)  # requests held until now get their answer (503)

    async def delete_node(self, name: str) -> None:
        """Drain and stop every instance of the node, then forget it."""
        node = self.nodes[name]
        gone = self._gone.setdefault(name, asyncio.Event())
        if not node.deleting:
            node.deleting = True
            self.store.save_node(node)
            self._update_node_status(node)
            self._wake.set()
        await gone.wait()

    def _forget_node(self, node: Node) -> None:
        del self.nodes[node.name]
        del self.instances[node.name]
        self.node_statuses.pop(node.name, None)
        self._failures.pop(node.name, None)
        self._not_before.pop(node.name, None)
        self.wanted.pop(node.name, None)
        self._load.pop(node.name, None)
        self.replays.forget(node.name)
        self.routes.remove_node(node.name)
        self.store.remove_node(node.name)
        self._emit(node.name, None, None, "node deleted")
        self._gone.pop(node.name, asyncio.Event()).set()

    # the reconcile pass ---------------------------------------------------------------------

    def reconcile(self, node: Node) -> None:
        now = asyncio.get_running_loop().time()
        group = self.instances[node.name]
        for instance in list(group.values()):
            status = instance.status
            if status in (InstanceStatus.UNDEFINED, InstanceStatus.DELETING):
                continue
            if not self.runtime.alive(instance):
                message = self.runtime.ended(instance)
                if self.runtime.exit_code(instance) == REFUSED_EXIT:  # its log says why, last
                    message += f": checkpoint refused: {refusal(self.runtime.logs(instance))}"
                self.log.warning("%s: %s", instance.id, message)
                self.transition(node, instance, Event.EXITED, message)
                self.failed(node)
                self.begin_stop(node, instance, message)
                continue
            checks = self._checks.get(instance.id)
            if checks is None or self._busy(instance):
                continue
            if replace_due(checks, status, node.health, now):
                self.begin_stop(node, instance,
                                f"unhealthy for over {node.health.replace_after_s:g} s")
            elif now >= checks.next_at:
                self._spawn(instance, self._check(node, instance))
        if node.deleting:
            for instance in group.values():
                if instance.status is not InstanceStatus.DELETING:
                    self.begin_stop(node, instance, "the node is being deleted")
            if not group:
                self._forget_node(node)
            return
        self.wanted[node.name] = wanted = self._scale(node, now)
        active = [i for i in group.values() if i.status is not InstanceStatus.DELETING]
        start, stop = plan(node, active, wanted)
        for instance in stop:
            self.begin_stop(node, instance, stop_reason(node, instance))
        if start and now >= self._not_before.get(node.name, 0.0) and \
                not self.replays.blocks(node):
            for _ in range(start):
                self._add_instance(node)

    def _scale(self, node: Node, now: float) -> int:
        """Sample the node's load; the instances it wants now."""
        samples = self._load[node.name]
        route = self.routes.nodes[node.name]
        samples.append((now, route.in_flight + route.missed))
        route.missed = 0
        self._load[node.name] = samples = window(samples, node, now)
        wanted = desired_instances(node, self.wanted[node.name], samples, now)
        if wanted != self.wanted[node.name]:
            self._emit(node.name, None, None, f"scale {self.wanted[node.name]} -> {wanted} "
                       f"instances (load {samples[-1][1]})")
        return wanted

    def _busy(self, instance: Instance) -> bool:
        task = self._tasks.get(instance.id)
        return task is not None and not task.done()

    def _spawn(self, instance: Instance, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks[instance.id] = task
        task.add_done_callback(lambda done: self._task_done(instance, done))

    def _task_done(self, instance: Instance, task: asyncio.Task[None]) -> None:
        if self._tasks.get(instance.id) is task:
            del self._tasks[instance.id]
        if task.cancelled() or task.exception() is None:
            return
        self.log.error("task of %s failed", instance.id, exc_info=task.exception())
        node = self.nodes.get(instance.node)
        if node is None or instance.id not in self.instances[node.name]:
            return
        if instance.status is InstanceStatus.DELETING:  # stopping failed: forget it anyway
            self._forget_instance(node, instance)
        else:
            self.failed(node)
            self.begin_stop(node, instance, f"supervision failed: {task.exception()}")

    # instances ----------------------------------------------------------------------------

    def _add_instance(self, node: Node) -> None:
        instance = Instance(id=f"{node.name}-{secrets.token_hex(3)}", node=node.name,
                            generation=node.generation, checkpoint_id=node.checkpoint_id,
                            runtime=node.runtime)
        self.instances[node.name][instance.id] = instance
        self.store.save_instance(instance)
        self._emit(node.name, instance.id, instance.status.value, "")
        self._spawn(instance, self.startup.start(node, instance))

    def adopt(self, node: Node, instance: Instance, message: str = "",
              ready: bool = False) -> None:
        """Take back an instance still running from a previous start of the service: one
        that is `ready` serves at once; any other is checked as a new one would be."""
        instance.status = InstanceStatus.UNDEFINED
        self.instances[node.name][instance.id] = instance
        message = message or f"adopted container {instance.container_id[:12]}"
        if ready:
            self.transition(node, instance, Event.ADOPTED, message)
            return self.admitted(node, instance)
        self.transition(node, instance, Event.SPAWNED, message)
        self._spawn(instance, self.startup.follow(node, instance))

    def note(self, node: str, message: str) -> None:
        """Progress worth showing on the node (image pulls and builds)."""
        if node in self.nodes:
            self._emit(node, None, None, message)

    def admitted(self, node: Node, instance: Instance) -> None:
        """Ready and admitted by start-up: into balancing, health-checked from now on."""
        now = asyncio.get_running_loop().time()
        self._checks[instance.id] = Checks(next_at=now + node.health.interval_s)
        self._add_backend(node, instance)
        self._failures[node.name] = 0
        self.transition(node, instance, Event.READY, "ready")

    def checks(self, instance_id: str) -> Checks | None:
        """The instance's health-check results so far (None before it is admitted)."""
        return self._checks.get(instance_id)

    def _add_backend(self, node: Node, instance: Instance) -> None:
        check = NO_INPUTS if node.from_image else self.input_check(instance.checkpoint_id)
        # a checkpoint instance serves its metrics itself; an image's, where told, if at all
        telemetry = instance.telemetry or (None if node.from_image else "")
        self.routes.add_backend(node.name, instance.id, instance.host, instance.port or 0, check,
                                telemetry, self.runtime.token(instance))

    async def _check(self, node: Node, instance: Instance) -> None:
        """One health check, and the transition it completes, if any."""
        ok = await healthy(node, instance, node.health.timeout_s)
        checks = self._checks[instance.id]
        now = asyncio.get_running_loop().time()
        event = after_check(checks, ok, instance.status, node.health, now)
        if event is Event.RECOVERED:
            self._add_backend(node, instance)
            self.transition(node, instance, event, f"{checks.passes} checks passed")
        elif event is Event.FAILING:
            backend = self.routes.remove_backend(node.name, instance.id)
            if backend is not None:  # requests in flight on it end on their own timeout
                backend.pool.close()
            self.transition(node, instance, event, f"{checks.fails} checks failed")
            self.failed(node)

    def begin_stop(self, node: Node, instance: Instance, reason: str, *,
                   force: bool = False) -> None:
        """Cancel what the instance was doing; it drains and stops in a task of its own
        (`force`: no draining, and killed soon after SIGTERM)."""
        task = self._tasks.get(instance.id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.transition(node, instance, Event.STOP, reason)
        self._spawn(instance, self._remove(node, instance, drain=not force,
                                           stop_timeout_s=STUCK_STOP_S if force else None))

    async def _remove(self, node: Node, instance: Instance, drain: bool,
                      stop_timeout_s: float | None = None) -> None:
        """Take the instance out of balancing, let its requests finish, then stop it."""
        backend = self.routes.remove_backend(node.name, instance.id)
        if backend is not None and drain:
            await self._drain(backend)
        if backend is not None:
            backend.pool.close()
        await self.runtime.stop(instance, stop_timeout_s or self.stop_timeout_s)
        self._forget_instance(node, instance)

    async def _drain(self, backend: Backend) -> None:
        """Let the requests in flight on `backend` end, up to the drain timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout_s
        # Gateway workers send it requests until they apply the routes without it (their
        # acks say what they then had on it); the count is sampled: no end is signalled.
        await self.routes.applied()
        while backend.in_flight and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    def _forget_instance(self, node: Node, instance: Instance) -> None:
        self.instances[node.name].pop(instance.id, None)
        self._checks.pop(instance.id, None)
        self.store.save_instance(instance, removed=True)
        self._emit(node.name, instance.id, None, "removed")
        self._update_node_status(node)
        self._wake.set()

    def _stuck(self, name: str, instance_id: str) -> None:
        """The gateway took an instance out of balancing: a request ran past the timeout."""
        node = self.nodes.get(name)
        instance = self.instances.get(name, {}).get(instance_id)
        if node is None or instance is None or instance.status is InstanceStatus.DELETING:
            return
        self._emit(name, instance_id, None, "out of balancing: a request ran past the "
                   "request timeout")
        self._spawn(instance, watch_stuck(self, self.routes, node, instance))

    # statuses -----------------------------------------------------------------------------

    def transition(self, node: Node, instance: Instance, event: Event, message: str) -> None:
        """Apply `event` to the instance, as the table says; told as an event when it moves."""
        status = next_status(instance.status, event)
        if status is None:
            return
        instance.status, instance.message = status, message
        self.store.save_instance(instance)
        self._emit(node.name, instance.id, status.value, message)
        self._update_node_status(node)

    def failed(self, node: Node) -> None:
        """An instance failed: back off new ones, and the node is past `Created`."""
        failures = self._failures.get(node.name, 0) + 1
        self._failures[node.name] = failures
        self._not_before[node.name] = asyncio.get_running_loop().time() + restart_delay(failures - 1)
        if not node.settled:
            node.settled = True
            self.store.save_node(node)
        self._update_node_status(node)

    def _update_node_status(self, node: Node) -> None:
        if node.name not in self.instances:
            return
        status = node_status(node, list(self.instances[node.name].values()))
        if status is NodeStatus.HEALTHY and not node.settled:
            node.settled = True
            self.store.save_node(node)
        if self.node_statuses.get(node.name) is not status:
            self.node_statuses[node.name] = status
            self._emit(node.name, None, status.value, "node")

    def _emit(self, node: str, instance: str | None, status: str | None, message: str) -> None:
        event = self.store.add_event(node, instance, status, message)
        for listener in self.listeners:
            listener(event)
