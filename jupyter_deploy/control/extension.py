"""The jupyter_server extension: the control API under /deploy/api.

In a notebook server it is a client of the deploy service of its state folder (started
detached when none runs) and proxies the control API to it; in `jupyter deploy serve`, or with
`c.DeployApp.host_service = True`, it hosts the service itself.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Integer, Unicode, default

from ..client import discovery
from ..runtimes.lease import LEASE_GRACE_S
from ..runtimes.limits import DEFAULT, DEFAULT_CONFIGS, DEFAULT_MEMORY_MB
from ..service.deploy import DeployService
from ..service.identity import LOCAL, Identity
from ..store.sqlite import EVENTS_PER_SUBJECT, default_state_dir
from .handlers.aliases import AliasesHandler, AliasHandler, ShadowHandler
from .handlers.checkpoints import CheckpointHandler, CheckpointsHandler
from .handlers.examples import ExamplesHandler
from .handlers.history import HistoryHandler
from .handlers.identity import IdentityHandler
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
from .handlers.projects import (
    AuditHandler,
    MemberHandler,
    ProjectHandler,
    ProjectsHandler,
    QuotasHandler,
)
from .handlers.proxy import ProxyHandler
from .handlers.requests import RequestsHandler
from .handlers.stored import CheckpointFilesHandler
from .handlers.usage import UsageHandler
from .link import ServiceLink, collision_hint

NODE = r"(?P<name>[^/:%]+)"
PROJECT = r"(?P<project>[^/]+)"
SERVICE_URL_ENV = "JUPYTER_DEPLOY_SERVICE_URL"
SERVICE_TOKEN_ENV = "JUPYTER_DEPLOY_SERVICE_TOKEN"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
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
    keep_instances = Bool(True, config=True, help=(
        "Leave healthy process instances running when the service stops; the next start "
        "adopts them (checked by pid, start time, port and token)."))
    instance_lease_grace = Float(LEASE_GRACE_S, config=True, help=(
        "Seconds process instances keep running with no service holding the state folder "
        "(a restart must fit in it); then they stop."))
    default_runtime = Unicode("process", config=True, help=(
        "The runtime of nodes that name none: process, docker or swarm (an image node on "
        "the process default runs on docker)."))
    swarm_manager = Unicode("", config=True, help=(
        "The Docker engine of a Swarm manager (unix:///..., tcp://HOST:2376): the swarm "
        "runtime runs each instance as a Swarm service there. Empty: no swarm runtime."))
    registry = Unicode("", config=True, help=(
        "HOST:PORT of the registry the swarm runtime pushes checkpoint images to (they are "
        "built on the engine where the service runs)."))
    registry_pull = Unicode("", config=True, help=(
        "HOST:PORT at which Swarm's nodes reach that registry, when not at `registry`."))
    host_service = Bool(False, config=True, help=(
        "Host the deploy service inside this server (what `jupyter deploy serve` does). "
        "Default: be a client of the service of the state folder, started detached when none "
        "runs, so that nodes outlive this server."))
    service_url = Unicode("", config=True, help=(
        "Control API of a deploy service to use (e.g. http://host:port/deploy/api) instead "
        "of that of the state folder; nothing is started."))
    service_token = Unicode("", config=True, help="Token of the service at service_url.")
    service_start_timeout = Float(60.0, config=True, help=(
        "Seconds to wait for a deploy service this server starts to answer."))

    # Traits of this server's link to the service, not settings of the service.
    CLIENT_TRAITS = ("host_service", "service_url", "service_token", "service_start_timeout")
    # Set by `jupyter deploy serve`: a service that cannot start ends the process.
    exit_on_failure = False
    stop_on_sigint = False  # set by `jupyter deploy serve`: the process is the service's
    failure = ""
    gateway_workers = Integer(min(os.cpu_count() or 1, 4), config=True, help=(
        "Processes serving the gateway's REST and gRPC ports (SO_REUSEPORT); they outlive "
        "a restart of the service. 0: the gateway runs inside the service's process."))

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(default_state_dir())

    @default("service_url")
    def _default_service_url(self) -> str:
        # a hub passes the shared service to every user's server in c.Spawner.environment
        return os.environ.get(SERVICE_URL_ENV, "")

    @default("service_token")
    def _default_service_token(self) -> str:
        if os.environ.get(SERVICE_TOKEN_ENV):
            return os.environ[SERVICE_TOKEN_ENV]
        # Under a hub, the user's own hub token: the shared service asks the hub whose it is,
        # so it acts as this server's user and no one else.
        return os.environ.get(HUB_TOKEN_ENV, "") if self.service_url else ""

    def initialize_settings(self) -> None:
        self._announcement: Path | None = None
        self._service_file: Path | None = None
        if not self.host_service:
            self.link = ServiceLink(self.state_dir, self.service_url, self.service_token,
                                    self.service_start_timeout, self._service_config(),
                                    self.log)
            self.settings["deploy_link"] = self.link
            return
        self.service = DeployService(
            self.state_dir, gateway_host=self.gateway_host, gateway_port=self.gateway_port,
            gateway_grpc_port=self.gateway_grpc_port, request_timeout_s=self.request_timeout,
            gateway_public_url=self.gateway_public_url, gateway_limits=self.gateway_limits,
            log=self.log, log_max_bytes=self.log_max_bytes, log_files=self.log_files,
            events_per_subject=self.events_kept,
            base_image=self.base_image, instance_configs=self._instance_configs(),
            keep_containers=self.keep_containers, interpreters=self.interpreters,
            keep_instances=self.keep_instances, lease_grace_s=self.instance_lease_grace,
            default_runtime=self.default_runtime,
            swarm={"manager": self.swarm_manager, "registry": self.registry,
                   "pull_registry": self.registry_pull},
            gateway_workers=self.gateway_workers,
        )
        self.settings["deploy_service"] = self.service
        self.settings["deploy_identify"] = identify

    def _service_config(self) -> dict[str, Any]:
        """This server's DeployApp settings that the service it starts should have."""
        config: dict[str, Any] = {}
        for name, value in self.config.get("DeployApp", {}).items():
            if name not in self.CLIENT_TRAITS:
                # the value as this server read it: one from the command line is still text
                if self.has_trait(name):
                    value = getattr(self, name)
                try:
                    config[name] = json.loads(json.dumps(value))
                except (TypeError, ValueError):  # a lazy value: the service reads its own
                    self.log.warning("jupyter_deploy: DeployApp.%s is not passed on", name)
        config["state_dir"] = self.state_dir
        return config

    def _instance_configs(self) -> dict[str, Any]:
        """The instance configurations, with `default_memory_mb` applied when set."""
        configs = dict(self.instance_configs)
        if self.default_memory_mb is not None:
            configs[DEFAULT] = {**configs.get(DEFAULT, {}), "memory_mb": self.default_memory_mb}
        return configs

    def initialize_handlers(self) -> None:
        if not self.host_service:
            self.handlers.append((r"/deploy/api(?P<rest>/.*)?", ProxyHandler))
            return
        self.handlers.extend([
            (r"/deploy/api", ServiceHandler),
            (r"/deploy/api/checkpoints", CheckpointsHandler),
            (r"/deploy/api/checkpoints/(?P<ref>[^/]+)", CheckpointHandler),
            (r"/deploy/api/checkpoints/(?P<ref>[^/]+)/files", CheckpointFilesHandler),
            (r"/deploy/api/nodes", NodesHandler),
            (rf"/deploy/api/nodes/{NODE}", NodeHandler),
            (rf"/deploy/api/nodes/{NODE}{COLON}execute", ExecuteHandler),
            (rf"/deploy/api/nodes/{NODE}{COLON}(?P<action>suspend|resume)", SuspendHandler),
            (rf"/deploy/api/nodes/{NODE}/instances", InstancesHandler),
            (rf"/deploy/api/nodes/{NODE}/logs", LogsHandler),
            (rf"/deploy/api/nodes/{NODE}/metrics", MetricsHandler),
            (rf"/deploy/api/nodes/{NODE}/stats", StatsHandler),
            (rf"/deploy/api/nodes/{NODE}/history", HistoryHandler),
            (rf"/deploy/api/nodes/{NODE}/usage", UsageHandler),
            (rf"/deploy/api/(?P<kind>nodes|aliases)/{NODE}/examples", ExamplesHandler),
            (rf"/deploy/api/nodes/{NODE}/requests", RequestsHandler),
            (r"/deploy/api/aliases", AliasesHandler),
            (rf"/deploy/api/aliases/{NODE}", AliasHandler),
            (rf"/deploy/api/aliases/{NODE}/shadow", ShadowHandler),
            (r"/deploy/api/events", EventsHandler),
            (r"/deploy/api/openapi.json", OpenAPIHandler),
            (r"/deploy/api/identity", IdentityHandler),
            (r"/deploy/api/projects", ProjectsHandler),
            (rf"/deploy/api/projects/{PROJECT}", ProjectHandler),
            (rf"/deploy/api/projects/{PROJECT}/members/(?P<kind>user|group)/(?P<member>[^/]+)",
             MemberHandler),
            (rf"/deploy/api/projects/{PROJECT}/quotas", QuotasHandler),
            (rf"/deploy/api/projects/{PROJECT}/events", AuditHandler),
        ])

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        """Start (or find) the service once the server listens; tell kernels where it is."""
        url = serverapp.connection_url.rstrip("/") + "/deploy/api"
        token = serverapp.identity_provider.token
        if not self.host_service:
            # Kernels call this server, which proxies; the service comes up meanwhile.
            self._announcement = discovery.announce(url, token, "", "", self.state_dir)
            # A hub stops a server with SIGINT and stdin not a terminal: jupyter_server then
            # skips stop_extension, so the announcement also goes at the interpreter's exit.
            atexit.register(discovery.withdraw, self._announcement)
            self._starting = asyncio.ensure_future(self._connect())
            return
        if self.stop_on_sigint and not (sys.stdin and sys.stdin.isatty()):
            # A hub stops its services with SIGINT, stdin not a terminal: without this the
            # server exits at once and the service never stops (its supervisor, its lease).
            signal.signal(signal.SIGINT, serverapp._signal_stop)
        try:
            await self.service.start()
        except Exception as exc:  # the server runs on; the control API explains
            self.log.error("jupyter_deploy: the deploy service did not start: %s", exc)
            self.service.start_error = collision_hint(str(exc))
            if self.exit_on_failure:
                DeployApp.failure = f"the deploy service did not start: {exc}"
                serverapp.stop()
            return
        self._announcement = discovery.announce(
            url, token, self.service.gateway_url, self.service.gateway_grpc_address)
        self._service_file = discovery.write_service(self.state_dir, {
            "url": url, "token": token, "gateway_url": self.service.gateway_url,
            "gateway_grpc_address": self.service.gateway_grpc_address})
        atexit.register(discovery.withdraw, self._announcement)
        atexit.register(discovery.remove_service, self._service_file)

    async def _connect(self) -> None:
        try:
            target = await self.link.target()
        except Exception as exc:  # the proxy answers 503 with the reason meanwhile
            self.log.error("jupyter_deploy: %s", exc)
            return
        self.log.info("jupyter_deploy: using the deploy service at %s", target.url)

    async def stop_extension(self) -> None:
        """Withdraw this server's announcement; stop the service only if hosted here."""
        discovery.withdraw(self._announcement)
        if not self.host_service:
            self.link.close()  # the service, its gateway and instances run on
            return
        discovery.remove_service(self._service_file)
        await self.service.stop()


def identify(handler: Any) -> Identity:
    """Who calls the hosted service: the identity its identity provider proved (a hub's,
    control/jupyterhub.py), else the one personal project of a single JupyterLab."""
    identity = getattr(handler.current_user, "identity", None)
    return identity if isinstance(identity, Identity) else LOCAL
