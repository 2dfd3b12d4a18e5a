"""The docker runtime: each instance is a container, labelled with its node and instance.

A checkpoint node runs its checkpoint's image (built on first use, cached by checkpoint and
base); a Docker-image node runs its image. Containers are reachable on 127.0.0.1 only: on
host networking (the default) an instance listens on the port the runtime allocates, passed
as `$PORT`; on bridge networking its ports are published on 127.0.0.1. Every engine call
runs in a thread; `alive()` reads a view of the containers that a background task refreshes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import Instance, Node
from . import engine, secretfiles
from .limits import Limits, limits
from .logfiles import copy_stream
from .making import Makings
from .polled import PolledRuntime

LABEL = "jupyter-deploy"
EXITED = re.compile(r"Exited \((-?\d+)\)")
LOCAL_BASE_IMAGE = "jupyter-deploy-base:bookworm"  # scripts/base-image.sh builds it
PUBLIC_BASE_IMAGE = "python:3.11-slim"  # where a registry is reachable
WORKER_PORT = 8080  # where a checkpoint's worker listens inside a bridged container


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def generation_label(node: Node) -> str:
    return hashlib.sha256(node.generation.encode()).hexdigest()[:16]


class DockerRuntime(PolledRuntime[tuple[bool, int | None]]):
    """Instances as containers of the engine `DOCKER_HOST` names (the local one by default).

    `secrets(node)` gives a node's stored secrets; `note(node, line)` reports progress (image
    pulls and builds) to the node's events.
    """

    name = "docker"
    listed = "containers"

    def __init__(self, state_dir: Path, base_image: str, configs: dict[str, dict[str, Any]],
                 secrets: Callable[[str], dict[str, str]],
                 note: Callable[[str, str], None] = lambda node, line: None,
                 host: str = "127.0.0.1", busy_limit_s: float = 15.0,
                 keep_containers: bool = True, poll_s: float = 0.5,
                 log: logging.Logger | None = None, log_max_bytes: int = 10 * 1024 * 1024,
                 log_files: int = 3, public_key: bytes = b"") -> None:
        # the view: container id -> (running, exit code)
        super().__init__(poll_s, log or logging.getLogger("jupyter_deploy.docker"))
        self.log_max_bytes, self.log_files = log_max_bytes, log_files
        # the service's own key, given to every checkpoint container: an image rebuilt with
        # another manifest and key of its own still does not verify (the image's key is only
        # for a container started by hand)
        self.public_key = public_key
        self.state_dir = Path(state_dir).resolve()
        self.log_dir = self.state_dir / "logs"
        self.base_image = base_image  # "": the local base image if the engine has it
        self.configs = configs
        self.secrets = secrets
        self.note = note
        self.host = host
        self.busy_limit_s = busy_limit_s
        self.keep_containers = keep_containers
        self._client: Any = None
        self._makings = Makings()  # engine calls of creates under way
        self._verdicts: dict[str, str] = {}  # container id -> why it ended, when known
        self._builds: dict[str, asyncio.Future[str]] = {}  # one build per image at a time
        self._pythons: dict[str, str] = {}
        self._service_hash = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:6]

    @property
    def labels(self) -> dict[str, str]:
        """What marks this service's containers (two services never touch each other's)."""
        return {f"{LABEL}.service": str(self.state_dir)}

    async def client(self) -> Any:
        if self._client is None:
            self._client = await asyncio.to_thread(engine.connect)
        return self._client

    # before a node is created ---------------------------------------------------------------

    async def check(self, node: Node, secrets: dict[str, str]) -> None:
        """Refuse what cannot run here, with the setting named: no engine, a missing image,
        limits the engine cannot apply, a base image of another Python than the kernel's."""
        client = await self.client()
        await asyncio.to_thread(engine.check_limits, client, node,
                                limits(node, self.configs))
        if node.from_image:
            await asyncio.to_thread(engine.ensure_image, client, node.image,
                                    engine.registry_auth(node, secrets), self._reporter(node))

    async def base(self, node: Node) -> str:
        """The node's base image, else the service's, else the local one when the engine
        has it, else the public one."""
        if node.base_image or self.base_image:
            return node.base_image or self.base_image
        client = await self.client()
        try:
            await asyncio.to_thread(client.images.get, LOCAL_BASE_IMAGE)
        except Exception:  # noqa: BLE001 - not built here: the public one
            return PUBLIC_BASE_IMAGE
        return LOCAL_BASE_IMAGE

    def _reporter(self, node: Node) -> Callable[[str], None]:
        """Progress lines from a thread, told on the event loop."""
        loop = asyncio.get_running_loop()

        def report(line: str) -> None:
            loop.call_soon_threadsafe(self.note, node.name, line)
        return report

    async def check_python(self, node: Node, python: str) -> str | None:
        """Why the node's base image cannot run a checkpoint pinned with `python`, if so."""
        client = await self.client()
        base = await self.base(node)
        try:
            await asyncio.to_thread(client.images.get, base)
        except Exception as exc:  # noqa: BLE001 - told to the user as it is
            return f"the base image {base} is not available: {exc}"
        if base not in self._pythons:
            self._pythons[base] = await asyncio.to_thread(engine.python_of, client, base)
        wanted = ".".join(python.split(".")[:2])
        if self._pythons[base] != wanted:
            return (f"the base image {base} has Python {self._pythons[base]}; the checkpoint "
                    f"was pinned with Python {python}: use a base image with Python {wanted}")
        return None

    # instances ---------------------------------------------------------------------------

    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        client = await self.client()
        report = self._reporter(node)
        if node.from_image:
            image = await asyncio.to_thread(
                engine.ensure_image, client, node.image,
                engine.registry_auth(node, self.secrets(node.name)), report)
            tag = node.image
        else:
            tag = await self._checkpoint_image(client, node, checkpoint_dir, report)
            image = await asyncio.to_thread(client.images.get, tag)
        options = self._options(node, instance, image)
        log_path = self.log_dir / node.name / f"{instance.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        instance.log_path = str(log_path)
        container = await self._makings.run(instance.id, secretfiles.run, client, tag, options,
                                            secretfiles.files_of(self.secrets(node.name)))
        instance.container_id = container.id
        self._makings.made(instance.id)
        self._watch()
        self._states[container.id] = (True, None)
        self._fresh.add(container.id)
        self._follow_logs(container, log_path, stamped=not node.from_image)

    async def _checkpoint_image(self, client: Any, node: Node, checkpoint_dir: Path,
                                report: Callable[[str], None]) -> str:
        base = await self.base(node)
        key = f"{checkpoint_dir.name}/{base}"
        build = self._builds.get(key)
        if build is None or build.done():  # a build under way is shared, not repeated
            build = asyncio.ensure_future(asyncio.to_thread(
                engine.build_checkpoint_image, client, checkpoint_dir, base, report,
                self.public_key))
            self._builds[key] = build
        return await asyncio.shield(build)

    def _options(self, node: Node, instance: Instance, image: Any) -> dict[str, Any]:
        """How the container runs: ports, environment, limits, user, labels."""
        env = {**node.env, **{k: v for k, v in self.secrets(node.name).items() if ":" not in k}}
        port = free_port(self.host)
        options: dict[str, Any] = {
            "labels": {**self.labels, f"{LABEL}.node": node.name,
                       f"{LABEL}.instance": instance.id,
                       f"{LABEL}.generation": generation_label(node)},
            "name": f"jupyter-deploy-{instance.id}-{self._service_hash}",
            "user": engine.user_of(image), "init": True,
            **engine.limit_options(self._limits(node)),
        }
        health_port = telemetry_port = 0
        if node.network == "host":
            options["network_mode"] = "host"
            inner = port
        else:
            inner = node.port if node.from_image else WORKER_PORT
            published = {inner: (self.host, port)}
            for extra in (node.health.port, (node.telemetry or {}).get("port", 0)):
                if extra and extra != inner:
                    published.setdefault(extra, (self.host, free_port(self.host)))
            options["ports"] = published
            health_port = published.get(node.health.port, (0, 0))[1]
            telemetry_port = published.get((node.telemetry or {}).get("port", 0), (0, 0))[1]
        if node.network == "host":
            health_port = node.health.port if node.health.port not in (0, node.port) else 0
            telemetry = (node.telemetry or {}).get("port", 0)
            telemetry_port = telemetry if telemetry not in (0, node.port) else 0
        if node.from_image:
            env.update({"PORT": str(inner), "HOST": "127.0.0.1" if node.network == "host"
                        else "0.0.0.0"})
        else:
            options["command"] = ["--host", "127.0.0.1" if node.network == "host" else "0.0.0.0",
                                  "--port", str(inner), "--busy-limit", str(self.busy_limit_s),
                                  "--log-file", "-"]  # stamped lines, tagged by request
            if self.public_key:
                options["command"] += ["--public-key", self.public_key.hex()]
        options["environment"] = {**env, "JUPYTER_DEPLOY_INSTANCE": instance.id}
        instance.host, instance.port = self.host, port
        instance.health_port = health_port
        if node.telemetry:
            instance.telemetry = (f"http://{self.host}:{telemetry_port or port}"
                                  f"{node.telemetry['path']}")
        return options

    def _limits(self, node: Node) -> Limits:
        return limits(node, self.configs)

    def _follow_logs(self, container: Any, log_path: Path, since: int | None = None,
                     stamped: bool = False) -> None:
        """Copy the container's output into the instance's rotating log as it comes."""
        copy_stream(lambda: container.logs(stream=True, follow=True, since=since), str(log_path),
                    self.log_max_bytes, self.log_files, stamped, f"logs-{container.short_id}")

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        made = await self._makings.settled(instance.id)  # by a create called off meanwhile
        if made is not None:
            instance.container_id = instance.container_id or made.id
        if not instance.container_id:
            return
        client = await self.client()
        await asyncio.to_thread(_remove, client, instance.container_id, timeout_s)
        self._states.pop(instance.container_id, None)

    def detach(self, instance: Instance) -> bool:
        """Containers outlive the service (when configured so): the next start adopts them."""
        return self.keep_containers and bool(instance.container_id)

    # adoption ------------------------------------------------------------------------------

    async def running(self) -> list[dict[str, Any]]:
        """This service's containers: id, labels, and whether each is running."""
        found = await asyncio.to_thread(self._containers, await self.client())
        return [{"id": c["Id"], "labels": c["Labels"], "running": c["State"] == "running"}
                for c in found]

    async def adopt(self, instance: Instance) -> None:
        """Follow a container a previous run of the service started."""
        client = await self.client()
        container = await asyncio.to_thread(client.containers.get, instance.container_id)
        self._watch()
        self._states[container.id] = (container.status == "running", None)
        self._fresh.add(container.id)
        if instance.log_path:
            self._follow_logs(container, Path(instance.log_path), since=int(time.time()),
                              stamped=bool(instance.checkpoint_id))

    async def remove(self, container_id: str) -> None:
        client = await self.client()
        await asyncio.to_thread(_remove, client, container_id, 5.0)

    def _containers(self, client: Any) -> list[dict[str, Any]]:
        """This service's containers as the engine lists them, stopped ones too."""
        found: list[dict[str, Any]] = client.api.containers(all=True, filters={
            "label": [f"{k}={v}" for k, v in self.labels.items()]})
        return found

    async def _listing(self) -> dict[str, tuple[bool, int | None]]:
        found = await asyncio.to_thread(self._containers, self._client)
        return {c["Id"]: _state(c) for c in found}

    def _running(self, entry: tuple[bool, int | None]) -> bool:
        return entry[0]

    def _code(self, entry: tuple[bool, int | None]) -> int | None:
        return entry[1]

    async def _ending(self, ids: list[str]) -> None:
        """Whether Docker's OOM killer ended them: told before alive() says they are gone."""
        self._verdicts.update(await asyncio.to_thread(_oom_killed, self._client, ids))

    def ended(self, instance: Instance) -> str:
        return self._verdicts.pop(instance.container_id, None) or super().ended(instance)


def _oom_killed(client: Any, ids: list[str]) -> dict[str, str]:
    """What Docker's OOM killer ended among the containers `ids`, told with their limit."""
    verdicts = {}
    for container_id in ids:
        try:
            info = client.api.inspect_container(container_id)
        except Exception:  # noqa: BLE001 - removed meanwhile: nothing to tell
            continue
        if (info.get("State") or {}).get("OOMKilled"):
            limit = ((info.get("HostConfig") or {}).get("Memory") or 0) >> 20
            verdicts[container_id] = f"killed: over its memory limit of {limit} MB (Docker)"
    return verdicts


def _state(container: dict[str, Any]) -> tuple[bool, int | None]:
    if container["State"] in ("running", "created", "restarting"):
        return True, None
    match = EXITED.search(container.get("Status", ""))
    return False, int(match.group(1)) if match else None


def _remove(client: Any, container_id: str, timeout_s: float) -> None:
    import docker

    try:
        container = client.containers.get(container_id)
        if container.status == "running":
            container.stop(timeout=max(1, int(timeout_s)))
        container.remove(force=True)
    except docker.errors.NotFound:
        pass

