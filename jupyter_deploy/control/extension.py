"""The jupyter_server extension: hosts the deploy service and its control API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Integer, Unicode, default

from ..client import discovery
from ..runtimes.limits import DEFAULT, DEFAULT_CONFIGS, DEFAULT_MEMORY_MB
from ..service.deploy import DeployService
from ..store.sqlite import EVENTS_PER_SUBJECT, default_state_dir
from .handlers.aliases import AliasesHandler, AliasHandler, ShadowHandler
from .handlers.checkpoints import CheckpointHandler, CheckpointsHandler
from .handlers.examples import ExamplesHandler
from .handlers.nodes import (
    EventsHandler,
    ExecuteHandler,
    InstancesHandler,
    LogsHandler,
    MetricsHandler,
    NodeHandler,
    NodesHandler,
    ServiceHandler,
    StatsHandler,
    SuspendHandler,
)
from .handlers.openapi import OpenAPIHandler
from .handlers.requests import RequestsHandler

NODE = r"(?P<name>[^/:%]+)"
COLON = r"(?::|%3[Aa])"  # clients may percent-encode the colon


class DeployApp(ExtensionApp):
    name = "jupyter_deploy"
    description = "Deploy notebook cells as supervised, scalable services."

    state_dir = Unicode(config=True, help="Folder of the store, checkpoints and instance logs.")
    gateway_host = Unicode("127.0.0.1", config=True, help="Address the gateway listens on.")
    gateway_port = Integer(8890, config=True, help="Port of the gateway (0: any free port).")
    gateway_grpc_port = Integer(8891, config=True,
                                help="gRPC port of the gateway (0: any free port).")
    request_timeout = Float(15.0, config=True, help="Seconds a gateway request may take.")
    gateway_public_url = Unicode("", config=True, help=(
        "The gateway's URL as callers reach it (behind a proxy, say): the server of the "
        "OpenAPI documents. Default: the gateway's own address."))
    gateway_limits = Dict(config=True, help=(
        "What one connection to the gateway may cost, over the defaults: head_timeout_s (10), "
        "max_head (65536), max_trailer (8192), max_buffered (1048576 bytes of answers queued "
        "for a client that does not read), stall_timeout_s (60), max_pipeline (16), "
        "max_connections (10000), max_per_client (1000)."))
    log_max_bytes = Integer(10 * 1024 * 1024, config=True,
                            help="Size at which an instance's log file is rotated.")
    log_files = Integer(3, config=True,
                        help="Log files kept per instance, the current one included.")
    events_kept = Integer(EVENTS_PER_SUBJECT, config=True, help=(
        "Events kept per node, checkpoint and alias in the store; older ones are trimmed."))
    base_image = Unicode("", config=True, help=(
        "Base image of checkpoint images on the docker runtime (a node's base_image "
        "overrides it). Default: the local jupyter-deploy-base:bookworm when the engine has "
        "it (scripts/base-image.sh), else python:3.11-slim."))
    instance_configs = Dict(DEFAULT_CONFIGS, config=True, help=(
        "Named instance configurations: {NAME: {cpus, memory_mb, gpus}}; `default` is that of "
        "nodes naming none. Containers get them as Docker's limits; processes as a memory "
        "cgroup (else their resident set is watched), killed and replaced when over."))
    default_memory_mb = Integer(None, allow_none=True, config=True, help=(
        "Memory limit of instances whose node names no config and no memory_mb (sets "
        f"instance_configs.default.memory_mb; default {DEFAULT_MEMORY_MB}; 0: none)."))
    interpreters = Dict(value_trait=Unicode(), key_trait=Unicode(), config=True, help=(
        "Interpreters process instances may run, {NAME: absolute path}; checked at start. "
        "An instance runs the one whose path is the interpreter of the kernel that pinned "
        "its checkpoint, else the service's own. A path in a checkpoint is never run."))
    keep_containers = Bool(True, config=True, help=(
        "Leave healthy containers running when the service stops; the next start adopts "
        "them."))
    gateway_workers = Integer(min(os.cpu_count() or 1, 4), config=True, help=(
        "Processes serving the gateway's REST and gRPC ports (SO_REUSEPORT); they outlive "
        "a restart of the service. 0: the gateway runs inside the service's process."))

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(default_state_dir())

    def initialize_settings(self) -> None:
        self.service = DeployService(
            self.state_dir, gateway_host=self.gateway_host, gateway_port=self.gateway_port,
            gateway_grpc_port=self.gateway_grpc_port, request_timeout_s=self.request_timeout,
            gateway_public_url=self.gateway_public_url, gateway_limits=self.gateway_limits,
            log=self.log, log_max_bytes=self.log_max_bytes, log_files=self.log_files,
            events_per_subject=self.events_kept,
            base_image=self.base_image, instance_configs=self._instance_configs(),
            keep_containers=self.keep_containers, interpreters=self.interpreters,
            gateway_workers=self.gateway_workers,
        )
        self.settings["deploy_service"] = self.service
        self._announcement: Path | None = None

    def _instance_configs(self) -> dict[str, Any]:
        """The instance configurations, with `default_memory_mb` applied when set."""
        configs = dict(self.instance_configs)
        if self.default_memory_mb is not None:
            configs[DEFAULT] = {**configs.get(DEFAULT, {}), "memory_mb": self.default_memory_mb}
        return configs

    def initialize_handlers(self) -> None:
        self.handlers.extend([
            (r"/deploy/api", ServiceHandler),
            (r"/deploy/api/checkpoints", CheckpointsHandler),
            (r"/deploy/api/checkpoints/(?P<ref>[^/]+)", CheckpointHandler),
            (r"/deploy/api/nodes", NodesHandler),
            (rf"/deploy/api/nodes/{NODE}", NodeHandler),
            (rf"/deploy/api/nodes/{NODE}{COLON}execute", ExecuteHandler),
            (rf"/deploy/api/nodes/{NODE}{COLON}(?P<action>suspend|resume)", SuspendHandler),
            (rf"/deploy/api/nodes/{NODE}/instances", InstancesHandler),
            (rf"/deploy/api/nodes/{NODE}/logs", LogsHandler),
            (rf"/deploy/api/nodes/{NODE}/metrics", MetricsHandler),
            (rf"/deploy/api/nodes/{NODE}/stats", StatsHandler),
            (rf"/deploy/api/(?P<kind>nodes|aliases)/{NODE}/examples", ExamplesHandler),
            (rf"/deploy/api/nodes/{NODE}/requests", RequestsHandler),
            (r"/deploy/api/aliases", AliasesHandler),
            (rf"/deploy/api/aliases/{NODE}", AliasHandler),
            (rf"/deploy/api/aliases/{NODE}/shadow", ShadowHandler),
            (r"/deploy/api/events", EventsHandler),
            (r"/deploy/api/openapi.json", OpenAPIHandler),
        ])

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        """Start the service once the server listens, and tell kernels where it is."""
        try:
            await self.service.start()
        except Exception as exc:  # the server runs on; the control API explains
            self.log.error("jupyter_deploy: the deploy service did not start: %s", exc)
            self.service.start_error = str(exc)
            return
        url = serverapp.connection_url.rstrip("/") + "/deploy/api"
        self._announcement = discovery.announce(
            url, serverapp.identity_provider.token, self.service.gateway_url,
            self.service.gateway_grpc_address)

    async def stop_extension(self) -> None:
        discovery.withdraw(self._announcement)
        await self.service.stop()
