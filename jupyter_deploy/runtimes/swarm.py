"""The swarm runtime: each instance is one Swarm service on an existing Docker Swarm (issue 14).

The service talks to a Swarm manager's engine. A checkpoint's image is built on the engine
where the service runs and pushed to the registry; image nodes pull with the node's
credentials; both are pinned by digest. Secrets (and each checkpoint instance's token) are
Docker secrets, files under /run/secrets. Instances listen on their Swarm node's address,
on a host-mode port Swarm chooses, read from the task. A background task keeps a view of the
tasks and nodes, so `alive()` never calls the engine: a task that ended, or whose Swarm node
is down, is an instance gone, which the supervisor replaces (Swarm never restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets as random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import Instance, InvalidInput, Node
from . import secretfiles, swarm_engine, swarm_images
from . import swarm_spec as spec
from .docker import LOCAL_BASE_IMAGE, generation_label
from .engine import connect, registry_auth
from .images import USER as CHECKPOINT_USER
from .limits import check_capacity, limits
from .logfiles import copy_stream
from .making import Makings
from .polled import PolledRuntime
from .swarm_spec import LABEL, TaskView

TOKEN_HEADER = "x-instance-token"


class SwarmRuntime(PolledRuntime[TaskView]):
    """Instances as single-replica services of the Swarm whose manager is `manager` (a
    Docker engine URL); checkpoint images go to `registry`, which Swarm's nodes reach at
    `pull_registry` (default: the same address)."""

    name = "swarm"
    listed = "Swarm tasks"

    def __init__(self, state_dir: Path, manager: str, registry: str, configs: dict[str, Any],
                 secrets: Callable[[str], dict[str, str]],
                 note: Callable[[str, str], None] = lambda node, line: None,
                 base_image: str = "", pull_registry: str = "", busy_limit_s: float = 15.0,
                 public_key: bytes = b"", keep_services: bool = True, poll_s: float = 0.5,
                 start_timeout_s: float = 120.0, log: logging.Logger | None = None,
                 log_max_bytes: int = 10 * 1024 * 1024, log_files: int = 3) -> None:
        # the view: service id -> its task
        super().__init__(poll_s, log or logging.getLogger("jupyter_deploy.swarm"))
        self.state_dir = Path(state_dir).resolve()
        self.manager_url, self.registry = manager, registry
        self.pull_registry = pull_registry or registry
        self.configs, self.secrets, self.note = configs, secrets, note
        self.base_image = base_image
        self.busy_limit_s, self.public_key = busy_limit_s, public_key
        self.keep_services = keep_services
        self.start_timeout_s = start_timeout_s
        self.log_max_bytes, self.log_files = log_max_bytes, log_files
        self._manager: Any = None
        self._local: Any = None
        self._makings = Makings()  # engine calls of creates under way
        self._builds: dict[str, asyncio.Future[str]] = {}  # one build and push per image
        self._pins: dict[str, str] = {}  # node/generation -> its image by digest
        self._hash = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:6]

    @property
    def labels(self) -> dict[str, str]:
        """What marks this service's Swarm services, containers and secrets."""
        return {f"{LABEL}.service": str(self.state_dir)}

    def _filters(self, **extra: str) -> dict[str, list[str]]:
        return {"label": [f"{k}={v}" for k, v in {**self.labels, **extra}.items()]}

    async def manager(self) -> Any:
        if self._manager is None:
            self._manager = await asyncio.to_thread(swarm_engine.connect_manager, self.manager_url)
        return self._manager

    async def local(self) -> Any:
        if self._local is None:
            self._local = await asyncio.to_thread(connect)
        return self._local

    def token(self, instance: Instance) -> str:
        """The instance's own token, derived from a key kept in the state folder: the next
        start of the service knows the tokens of the instances it adopts."""
        path = self.state_dir / "instance-tokens.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(random.token_hex(32))
        key = bytes.fromhex(path.read_text().strip())
        return hmac.new(key, instance.id.encode(), hashlib.sha256).hexdigest()

    # before a node is created ---------------------------------------------------------------

    async def check(self, node: Node, secrets: dict[str, str]) -> None:
        """Refuse what Swarm cannot run, naming the setting: disk limits, GPUs no Swarm node
        advertises, more CPU or memory than the largest node has, an image its registry does
        not have, a checkpoint node with no registry to push its image to."""
        manager = await self.manager()
        swarm_nodes = await asyncio.to_thread(manager.api.nodes)
        wanted = limits(node, self.configs)
        spec.refuse(node, wanted, spec.gpus_of(swarm_nodes))
        check_capacity(node, wanted, swarm_engine.largest(swarm_nodes))
        if node.from_image:
            await asyncio.to_thread(swarm_images.pinned, manager, node.image,
                                    registry_auth(node, secrets))
        elif not self.registry:
            raise InvalidInput("the swarm runtime runs checkpoint images from a registry: set "
                               "c.DeployApp.registry (see docs/swarm.md)", field="runtime")

    # instances ---------------------------------------------------------------------------

    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        manager = await self.manager()
        stored = self.secrets(node.name)
        image = await self._image(node, checkpoint_dir, stored)
        labels = {**self.labels, f"{LABEL}.node": node.name, f"{LABEL}.instance": instance.id,
                  f"{LABEL}.generation": generation_label(node)}
        files = {k: v for k, v in stored.items() if ":" not in k}  # never in the environment
        files.update(secretfiles.files_of(stored))
        if not node.from_image:
            files[spec.TOKEN_FILE] = self.token(instance)
        refs = await self._makings.run(instance.id, self._secrets, manager, instance, labels,
                                       files, node.from_image)
        env = {**node.env, "JUPYTER_DEPLOY_INSTANCE": instance.id}
        if node.from_image:
            env.update({"PORT": str(node.port), "HOST": "0.0.0.0"})
        service = spec.service_spec(
            node, instance.id, self._service_name(instance), image, labels, env,
            self._args(node), "" if node.from_image else CHECKPOINT_USER,
            limits(node, self.configs), refs)
        created = await self._makings.run(
            instance.id, swarm_engine.create_service, manager, service,
            registry_auth(node, stored) if node.from_image else None)
        instance.container_id = created["ID"]
        self._makings.made(instance.id)
        self._watch()
        self._fresh.add(instance.container_id)
        self._states[instance.container_id] = spec.task_view(None, {}, 0)
        view = await self._until_running(manager, node, instance)
        self._place(node, instance, view)

    async def _image(self, node: Node, checkpoint_dir: Path, stored: dict[str, str]) -> str:
        """The image reference the node's instances run, pinned by digest."""
        report = self._reporter(node)
        if node.from_image:  # pinned once per generation: every instance runs the same bytes
            pin = f"{node.name}/{node.generation}"
            if pin not in self._pins:
                manager = await self.manager()
                self._pins[pin] = await asyncio.to_thread(
                    swarm_images.pinned, manager, node.image, registry_auth(node, stored))
            return self._pins[pin]
        local = await self.local()
        base = node.base_image or self.base_image or LOCAL_BASE_IMAGE
        key = f"{checkpoint_dir.name}/{base}"
        build = self._builds.get(key)
        if build is None or (build.done() and build.exception() is not None):
            build = asyncio.ensure_future(asyncio.to_thread(
                swarm_images.publish_checkpoint, local, checkpoint_dir, base, self.registry,
                self.pull_registry, report, self.public_key))
            self._builds[key] = build
        return await asyncio.shield(build)

    def _reporter(self, node: Node) -> Callable[[str], None]:
        loop = asyncio.get_running_loop()

        def report(line: str) -> None:
            loop.call_soon_threadsafe(self.note, node.name, line)
        return report

    def _service_name(self, instance: Instance) -> str:
        name = f"jd-{self._hash}-{instance.id}"  # Swarm's names are at most 63 characters
        return name if len(name) <= 63 else f"{name[:56]}-{instance.id[-6:]}"

    def _args(self, node: Node) -> list[str]:
        """A checkpoint worker's arguments, after its image's entry point."""
        if node.from_image:
            return []
        args = ["--host", "0.0.0.0", "--port", str(spec.WORKER_PORT), "--busy-limit",
                str(self.busy_limit_s), "--log-file", "-",
                "--token-file", f"{spec.SECRETS_DIR}/{spec.TOKEN_FILE}"]
        return args + (["--public-key", self.public_key.hex()] if self.public_key else [])

    def _secrets(self, manager: Any, instance: Instance, labels: dict[str, str],
                 files: dict[str, str], from_image: bool) -> list[dict[str, Any]]:
        """Each secret as a Docker secret of the instance's own, mounted as its file."""
        uid, mode = ("0", 0o444) if from_image else (CHECKPOINT_USER.split(":")[0], 0o400)
        refs = []
        for name, value in sorted(files.items()):
            secret_name = f"jd-{self._hash}-{random.token_hex(6)}-{name}"[:64]
            secret = manager.api.create_secret(name=secret_name, data=value.encode(),
                                               labels=labels)
            refs.append({"SecretID": secret["ID"], "SecretName": secret_name,
                         "File": {"Name": name, "UID": uid, "GID": uid, "Mode": mode}})
        return refs

    async def _until_running(self, manager: Any, node: Node, instance: Instance) -> TaskView:
        """Follow the task until it runs with its port known; each change of its state is
        an event of the node, in Swarm's words. Raises when it ends or never runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        told = ""
        target = spec.ports_of(node)[0]
        while True:
            view = await asyncio.to_thread(swarm_engine.task_of, manager, instance.container_id, target)
            said = f"{view.state}: {view.message}"
            if said != told:
                told = said
                self.note(node.name, f"{instance.id}: Swarm task {said}")
            if not view.alive:
                raise RuntimeError(f"its Swarm task is {view.state}: {view.message}")
            if view.state == "running" and view.port and view.address:
                return view
            if loop.time() > deadline:
                raise TimeoutError(f"its Swarm task is still {view.state} after "
                                   f"{self.start_timeout_s:g} s: {view.message}")
            await asyncio.sleep(0.1)

    def _place(self, node: Node, instance: Instance, view: TaskView) -> None:
        """Where the gateway reaches the instance: its Swarm node's address, Swarm's ports."""
        instance.host, instance.port = view.address, view.port
        self._states[instance.container_id] = view
        health = node.health.port
        instance.health_port = view.port_of(health) if health and health != node.port else 0
        if node.telemetry:
            port = view.port_of(node.telemetry.get("port", 0)) or view.port
            instance.telemetry = f"http://{view.address}:{port}{node.telemetry['path']}"
        log_path = self.state_dir / "logs" / node.name / f"{instance.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        instance.log_path = str(log_path)
        self._follow_logs(instance.container_id, log_path, stamped=not node.from_image)

    def _follow_logs(self, service_id: str, log_path: Path, since: int = 0,
                     stamped: bool = False) -> None:
        """Copy the service's output into the instance's rotating log as it comes."""
        copy_stream(lambda: self._manager.api.service_logs(
            service_id, follow=True, stdout=True, stderr=True, since=since), str(log_path),
            self.log_max_bytes, self.log_files, stamped, f"logs-{service_id[:12]}")

    def ended(self, instance: Instance) -> str:
        view = self._states.get(instance.container_id)
        if view is None:
            return "its Swarm service is gone"
        return f"its Swarm task is {view.state}: {view.message}"

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        made = await self._makings.settled(instance.id)  # by a create called off meanwhile
        if isinstance(made, dict) and "ID" in made:  # its service (else secrets: by label)
            instance.container_id = instance.container_id or made["ID"]
        if not instance.container_id and self._manager is None:
            return  # refused before anything was made
        manager = await self.manager()  # secrets may exist without a service: removed too
        await asyncio.to_thread(swarm_engine.remove, manager, instance.container_id,
                                self._filters(**{f"{LABEL}.instance": instance.id}))
        self._states.pop(instance.container_id, None)

    def detach(self, instance: Instance) -> bool:
        """Services outlive the service (when configured so): the next start adopts them."""
        return self.keep_services and bool(instance.container_id)

    # adoption ------------------------------------------------------------------------------

    async def running(self) -> list[dict[str, Any]]:
        """This service's Swarm services: id, labels, and whether each task still runs."""
        manager = await self.manager()
        found = await asyncio.to_thread(manager.api.services, filters=self._filters())
        views = await asyncio.to_thread(swarm_engine.look, manager, self._filters())
        return [{"id": s["ID"], "labels": s["Spec"].get("Labels") or {},
                 "running": views.get(s["ID"], spec.task_view(None, {}, 0)).state == "running"
                 and views[s["ID"]].alive} for s in found]

    async def adopt(self, node: Node, instance: Instance) -> None:
        """Follow a service a previous run of the service started: where it is now."""
        manager = await self.manager()
        view = await asyncio.to_thread(swarm_engine.task_of, manager, instance.container_id,
                                       spec.ports_of(node)[0])
        self._watch()
        self._states[instance.container_id] = view
        instance.host, instance.port = view.address, view.port
        if instance.log_path:
            self._follow_logs(instance.container_id, Path(instance.log_path),
                              since=int(time.time()), stamped=not node.from_image)

    async def remove(self, service_id: str, instance_id: str = "") -> None:
        manager = await self.manager()
        await asyncio.to_thread(swarm_engine.remove, manager, service_id,
                                self._filters(**{f"{LABEL}.instance": instance_id}))

    async def sweep(self) -> None:
        """Secrets of instances whose service is gone (removed while a task still used them)."""
        if self._manager is None:
            return
        services = await asyncio.to_thread(self._manager.api.services, filters=self._filters())
        used = {(s["Spec"].get("Labels") or {}).get(f"{LABEL}.instance") for s in services}
        for secret in await asyncio.to_thread(self._manager.api.secrets, filters=self._filters()):
            if (secret["Spec"].get("Labels") or {}).get(f"{LABEL}.instance") not in used:
                with contextlib.suppress(Exception):  # in use still, or gone: the next sweep
                    await asyncio.to_thread(self._manager.api.remove_secret, secret["ID"])

    # the view ------------------------------------------------------------------------------

    async def _listing(self) -> dict[str, TaskView]:
        return await asyncio.to_thread(swarm_engine.look, self._manager, self._filters())

    def _running(self, entry: TaskView) -> bool:
        return entry.alive

    def _code(self, entry: TaskView) -> int | None:
        return entry.exit_code
