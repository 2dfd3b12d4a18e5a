"""The deploy service: store + supervisor + gateway, with no jupyter_server dependency.

The server extension hosts it inside a Jupyter server; `jupyter deploy serve` hosts the same
object standalone. Every control-API verb is a method here, handed to the part that owns its
concept: checkpoints, nodes, aliases, observe (logs, requests, metrics, events), examples.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..gateway.app import Gateway
from ..gateway.board import MAX_INSTANCES, MAX_NODES
from ..gateway.capture import Recorder
from ..gateway.grpc.server import GrpcGateway
from ..gateway.oip.versions import served_from
from ..gateway.routing import Routes
from ..gateway.state import Rows
from ..gateway.state import describe as describe_routes
from ..gateway.workers import GatewayWorkers
from ..http.framing import check_limits
from ..http.messages import Response
from ..models import InstanceStatus
from ..runtimes.interpreters import check_interpreters
from ..runtimes.lease import LEASE_GRACE_S, asked_everything
from ..runtimes.limits import DEFAULT_CONFIGS, check_configs
from ..store.sqlite import EVENTS_PER_SUBJECT, Store
from ..supervisor.loop import Supervisor
from . import docker_nodes
from .aliases import Aliases, AliasSet
from .checkpoints import Checkpoints
from .examples import Examples
from .identity import Identity
from .nodes import Nodes
from .observe import EventLog, Observe, event_filter
from .projects import Projects
from .projects_scope import Scope

# Statuses of an instance on its way into balancing. Just after a start, while one of them
# is being taken back (for up to SETTLE_S), the gateway workers keep serving those they had.
PENDING = (InstanceStatus.UNDEFINED, InstanceStatus.CREATED, InstanceStatus.STARTED,
           InstanceStatus.PREPARING)
SETTLE_S = 60.0


class DeployService:
    """The deploy service of one state folder: what the control API and the CLI talk to."""

    # True where the service owns its process (`jupyter deploy serve`); never inside a
    # notebook server, whose own objects are not the service's to freeze.
    freeze_gc = False

    def __init__(self, state_dir: str | Path, gateway_host: str = "127.0.0.1",
                 gateway_port: int = 8890, request_timeout_s: float = 15.0,
                 log: logging.Logger | None = None, gateway_grpc_port: int = 8891,
                 log_max_bytes: int = 10 * 1024 * 1024, log_files: int = 3,
                 base_image: str = "", instance_configs: dict[str, Any] | None = None,
                 keep_containers: bool = True, events_per_subject: int = EVENTS_PER_SUBJECT,
                 gateway_public_url: str = "", interpreters: dict[str, str] | None = None,
                 gateway_limits: dict[str, Any] | None = None,
                 keep_instances: bool = False, lease_grace_s: float = LEASE_GRACE_S,
                 default_runtime: str = "process", swarm: dict[str, Any] | None = None,
                 gateway_workers: int = 0,
                 **supervisor_options: Any) -> None:
        self.state_dir = Path(state_dir)
        self.log_max_bytes = log_max_bytes
        self.log_files = log_files
        self.gateway_host = gateway_host
        self.gateway_port = gateway_port
        self.gateway_grpc_port = gateway_grpc_port
        self.request_timeout_s = request_timeout_s
        self.gateway_public_url = gateway_public_url  # "": the gateway's own address
        self.gateway_limits = check_limits(gateway_limits or {})
        self._limit_settings = dict(gateway_limits or {})
        # processes of their own serving the gateway's ports; 0: the gateway runs here
        self.gateway_workers = gateway_workers
        self.workers: GatewayWorkers | None = None
        self.log = log or logging.getLogger("jupyter_deploy")
        self.supervisor_options = supervisor_options
        self.base_image = base_image  # "": the local base image if there is one, else public
        self.configs = check_configs(DEFAULT_CONFIGS if instance_configs is None
                                     else instance_configs)
        self.keep_containers = keep_containers
        # Process instances outlive a stop only where asked (DeployApp): a service built
        # directly, as in tests, stops everything it started.
        self.keep_instances, self.lease_grace_s = keep_instances, lease_grace_s
        self.interpreters = check_interpreters(interpreters or {})
        self.events_per_subject = events_per_subject
        self.default_runtime = default_runtime  # of nodes that name none
        self.swarm = swarm  # the swarm runtime's manager, registry, pull_registry (issue 14)
        self.running = False
        self.start_error = "it has not started yet"

    @property
    def gateway_url(self) -> str:
        """Where the gateway answers HTTP."""
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def gateway_grpc_address(self) -> str:
        """host:port of the gateway's gRPC server."""
        return f"{self.gateway_host}:{self.gateway_grpc_port}"

    async def start(self) -> None:
        self._build()
        try:
            await self._bring_up()
        except BaseException:  # leave nothing half-started: the ports, the state lock
            await self.runtime.close()
            await self.gateway.stop()
            await self.grpc.stop()
            if self.workers is not None:
                await self.workers.stop()
            self.store.close()
            raise
        self.running = True
        if self.freeze_gc:
            # What the process has built so far lives as long as it does: keep it out of the
            # full garbage collections that would otherwise pause the gateway for tens of ms.
            gc.freeze()
        self.log.info("jupyter_deploy: state in %s, gateway on %s, gRPC on %s", self.state_dir,
                      self.gateway_url, self.gateway_grpc_address)

    def _build(self) -> None:
        """The store, runtimes, gateway and supervisor, wired together; nothing runs yet."""
        self.store = Store(self.state_dir, events_per_subject=self.events_per_subject)
        self.event_log = EventLog(self.store)
        self.projects = Projects(self.store)
        self._checkpoints = Checkpoints(self.store, self.event_log)
        self._checkpoints.sign_existing()
        self.routes = Routes()
        self.docker, self.runtime = docker_nodes.runtimes(
            self.store, self.base_image, self.configs, self.request_timeout_s,
            self.keep_containers, lambda node, line: self.supervisor.note(node, line), self.log,
            self.log_max_bytes, self.log_files, self._checkpoints.key.public_bytes,
            self.interpreters, self.keep_instances, self.lease_grace_s, self.swarm,
            self.default_runtime)
        self.gateway = Gateway(self.routes, request_timeout_s=self.request_timeout_s,
                               describe=self.describe, public_url=self.gateway_public_url,
                               limits=self.gateway_limits)
        self.gateway.recorder = self.recorder = Recorder(self.routes, self.store)
        self.supervisor = Supervisor(self.store, self.runtime, self.routes,
                                     self._checkpoints.input_check,
                                     log=self.log,
                                     drain_timeout_s=self.request_timeout_s,
                                     replay_timeout_s=self.request_timeout_s,
                                     **self.supervisor_options)
        self.gateway.metrics.report = self.supervisor.note  # families its metrics leave out
        self.grpc = GrpcGateway(self.gateway, lambda: self.supervisor.nodes,
                                self._checkpoints.meta)
        self._compose()

    async def _bring_up(self) -> None:
        """Listen, take back what outlived the last start, and start supervising."""
        if not self.gateway_workers:
            self.gateway_port = await self.gateway.listen(self.gateway_host,
                                                          self.gateway_port)
            self.gateway_grpc_port = await self.grpc.listen(self.gateway_host,
                                                            self.gateway_grpc_port)
        self.gateway.proto_text = self.grpc.proto_text
        self.gateway.oip.models.served = served_from(
            lambda: self.supervisor.nodes, lambda node: self.supervisor.instances.get(node, {}),
            self._checkpoints.meta, self.store.checkpoints)
        self.supervisor.listeners.append(self.grpc.health.changed)
        self.supervisor.listeners.append(self.event_log.notify)
        for node in self.store.nodes():
            self.supervisor.add_node(node, is_new=False)
        # Containers outlive the service: those still wanted are taken back.
        await docker_nodes.adopt(self.store, self.supervisor, self.runtime, self.log)
        self._aliases.route_all()
        await self.supervisor.start()
        self.recorder.start()
        self._observe.history.start()
        await self._start_workers()

    async def _start_workers(self) -> None:
        """The gateway in worker processes (if any): those of a previous start are taken
        back."""
        if not self.gateway_workers:
            return
        metas: dict[str, dict[str, Any]] = {}

        def meta(checkpoint_id: str) -> dict[str, Any]:
            if checkpoint_id not in metas:  # checkpoints are immutable
                metas[checkpoint_id] = self._checkpoints.meta(checkpoint_id)
            return metas[checkpoint_id]

        settings = {"host": self.gateway_host, "port": self.gateway_port,
                    "grpc_port": self.gateway_grpc_port,
                    "request_timeout_s": self.request_timeout_s,
                    "public_url": self.gateway_public_url, "limits": self._limit_settings,
                    "workers": self.gateway_workers}
        started = time.monotonic()
        rows = (Rows(MAX_NODES), Rows(MAX_INSTANCES))  # on the workers' shared board

        def settling() -> bool:
            """Instances taken back are still being checked, a little after the start."""
            return time.monotonic() - started < SETTLE_S and any(
                i.status in PENDING for group in self.supervisor.instances.values()
                for i in group.values())

        self.workers = workers = GatewayWorkers(
            self.state_dir, self.gateway_workers, settings, self.routes,
            lambda: describe_routes(self.routes, self.supervisor.nodes,
                                    self.supervisor.instances, meta, self.store.checkpoints,
                                    settling(), rows),
            self.recorder, self.supervisor.note, self.log)
        await self.workers.start()
        # a status change can change what the workers serve (instances, the end of settling)
        self.supervisor.listeners.append(lambda event: workers.changed())
        self.gateway_port, self.gateway_grpc_port = self.workers.port, self.workers.grpc_port
        self.gateway.metrics.multiprocess = self.workers.metrics_dir  # the panel's figures

    def gateway_processes(self) -> list[dict[str, Any]]:
        """The gateway worker processes (none when the gateway runs in this process)."""
        return [] if self.workers is None else self.workers.status()

    def _routes_out(self) -> None:
        """A control-API change is on its way to every gateway worker before the call
        returns (each applies it on its next loop turn)."""
        if self.workers is not None:
            self.workers.publish()

    async def _routes_applied(self) -> None:
        """Every gateway worker serves the change before the call returns."""
        if self.workers is not None:
            self.workers.publish()
            await self.workers.synced()

    async def stop(self, everything: bool = False) -> None:
        """Stop the service; its gateway workers serve on from the last routes they got, and
        the instances its runtimes keep run on to be adopted, unless `everything` (or
        `jupyter deploy stop --everything` asked it): then they all stop too."""
        if not self.running:
            return
        everything = asked_everything(self.state_dir) or everything
        self.runtime.keep = not everything
        self.running = False
        self.start_error = "it has stopped"
        if self.workers is not None:
            await self.workers.stop(everything)
        # The gateway first: the requests in flight get their answers while instances still run.
        await asyncio.gather(self.gateway.stop(), self.grpc.stop())
        await self.supervisor.stop()
        await self.recorder.stop()
        await self._observe.history.stop()
        self.store.close()

    def _compose(self) -> None:
        """The parts that own each concept, over the store, supervisor and gateway."""
        url, grpc_address = (lambda: self.gateway_url), (lambda: self.gateway_grpc_address)
        self._nodes = Nodes(self.store, self.supervisor, self.routes, self.gateway,
                            self.recorder, self.runtime, self._checkpoints, self.configs, url,
                            self.request_timeout_s)
        self._aliases = Aliases(self.store, self.supervisor, self.routes, self.gateway,
                                self.event_log, url)
        self._observe = Observe(self._nodes, self.store, self.supervisor, self.runtime,
                                self.routes, self.gateway, self.recorder, lambda: self.running)
        self._examples = Examples(self._nodes, self._aliases, self._checkpoints,
                                  self.supervisor, self.routes, self.grpc, url, grpc_address)

    def scope(self, caller: Identity, project: str | None = None) -> Scope:
        """The control API's verbs as `caller` in `project` (None: the caller's own)."""
        return Scope(self, caller, project)

    # checkpoints -----------------------------------------------------------------------------

    async def add_checkpoint(self, body: Any) -> dict[str, Any]:
        """Store a checkpoint sent by a kernel: its metadata and base64 pickled state."""
        return await self._checkpoints.add(body)

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every version of every checkpoint."""
        return self._checkpoints.all()

    def checkpoint(self, ref: str) -> dict[str, Any]:
        """`NAME` (the latest version) or `NAME@VERSION`."""
        return self._checkpoints.get(ref)

    def delete_checkpoint(self, ref: str) -> list[dict[str, Any]]:
        """Delete one version or every version; return what was deleted."""
        return self._checkpoints.delete(ref)

    def examples(self, kind: str, name: str) -> dict[str, Any]:
        """Ready-to-paste calls of a node or alias."""
        return self._examples.examples(kind, name)

    def describe(self, kind: str, name: str) -> tuple[dict[str, Any], bool] | None:
        """The checkpoint a node or alias serves, and whether it is public."""
        return self._examples.describe(kind, name)

    # nodes -----------------------------------------------------------------------------------

    async def create_node(self, body: Any) -> tuple[dict[str, Any], str]:
        """Create a node; return it and its key (shown only here)."""
        created = await self._nodes.create(body)
        await self._routes_applied()
        return created

    def nodes(self) -> list[dict[str, Any]]:
        """Every node."""
        return self._nodes.all()

    def node(self, name: str) -> dict[str, Any]:
        """One node with its status, endpoint and instances."""
        return self._nodes.get(name)

    def update_node(self, name: str, body: Any) -> dict[str, Any]:
        """Change a node's settings."""
        updated = self._nodes.update(name, body)
        self._routes_out()
        return updated

    def suspend_node(self, name: str, suspended: bool) -> dict[str, Any]:
        """Suspend or resume a node."""
        changed = self._nodes.suspend(name, suspended)
        self._routes_out()
        return changed

    async def delete_node(self, name: str) -> None:
        """Delete a node; its instances drain first."""
        await self._nodes.delete(name)
        await self._routes_applied()

    def instances(self, name: str) -> list[dict[str, Any]]:
        """The node's instances."""
        return self.node(name)["instances"]

    async def execute(self, name: str, body: bytes) -> Response:
        """Call the node as the gateway would, for an already authenticated user."""
        return await self._nodes.execute(name, body)

    # aliases -----------------------------------------------------------------------------------

    def set_alias(self, name: Any, body: Any, create_only: bool = False) -> AliasSet:
        """Create or re-point an alias in one step."""
        done = self._aliases.put(name, body, create_only)
        self._routes_out()
        return done

    def aliases(self) -> list[dict[str, Any]]:
        """Every alias."""
        return self._aliases.all()

    def alias(self, name: str) -> dict[str, Any]:
        """One alias."""
        return self._aliases.get(name)

    def delete_alias(self, name: str) -> None:
        """Delete an alias."""
        self._aliases.delete(name)
        self._routes_out()

    def shadow(self, name: str) -> dict[str, Any]:
        """How the alias's shadow node answered, beside the primary answers."""
        return self._aliases.shadow(name)

    # observe -----------------------------------------------------------------------------------

    async def logs(self, name: str, instance: str | None = None, tail_bytes: int = 64 * 1024,
                   request_id: str | None = None) -> list[dict[str, Any]]:
        """Each instance's log tail, or one request's lines."""
        return await self._observe.logs(name, instance, tail_bytes, request_id)

    def follow_logs(self, name: str, instance: str | None = None, tail_bytes: int = 0,
                    request_id: str | None = None, poll_s: float = 0.2
                    ) -> AsyncIterator[dict[str, Any] | None]:
        """The end of each log, then new lines as they are written."""
        return self._observe.follow_logs(name, instance, tail_bytes, request_id, poll_s)

    async def requests(self, name: str, last: int = 100) -> dict[str, Any]:
        """The node's captured requests, newest last."""
        if self.workers is not None:  # those the workers sampled until now, too
            await self.workers.reports()
        return await self._observe.requests(name, last)

    async def metrics(self, name: str) -> str:
        """The node's instances' own metrics."""
        return await self._observe.metrics(name)

    def history(self, name: str, range_s: float) -> dict[str, Any]:
        """The node's gateway counters, sampled every few seconds over the last `range_s`."""
        self._nodes.find(name)
        return self._observe.history.series(name, range_s)

    async def events(self, since: int = 0, node: str | None = None, wait_s: float = 0.0,
                     kind: str | None = None, alias: str | None = None,
                     checkpoint: str | None = None) -> list[dict[str, Any]]:
        """Events after `since` (of one node, alias or checkpoint, or of one kind); with
        `wait_s`, wait that long for the next one."""
        kind, subject = event_filter(node, kind, alias, checkpoint)
        return await self.event_log.wait(since, wait_s, kind, subject)
