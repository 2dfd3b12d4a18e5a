"""The embedded runtime: each instance is a subprocess running the worker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import Instance, Node
from .base import Runtime
from .interpreters import checked_interpreter
from .lease import LEASE_FILE, stop_pids, workers_of
from .limits import limits
from .memory import Cgroups, MemoryGuard

# What an instance takes from the service's environment: nothing else, so that no credential
# exported under any name reaches code that runs third parties' requests (issue 12).
BASE_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM",
            "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "SSL_CERT_FILE",
            "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PYTHONHOME")


class ProcessRuntime(Runtime):
    """Instances are local processes of the service's interpreter (or one its settings
    name, see interpreters.py), on loopback ports.

    The runtime binds the listening socket itself and hands it to the worker, so the port
    is known at once and cannot be taken by anyone else in between.
    """

    name = "process"

    def __init__(self, log_dir: Path, host: str = "127.0.0.1", busy_limit_s: float = 15.0,
                 log_max_bytes: int = 10 * 1024 * 1024, log_files: int = 3,
                 configs: dict[str, dict[str, Any]] | None = None,
                 secrets: Callable[[str], dict[str, str]] | None = None,
                 lease_grace_s: float = 30.0, cgroups: bool = True, public_key: bytes = b"",
                 interpreters: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.lease = (log_dir.parent / LEASE_FILE).resolve()  # the folder's (lease.py)
        self.lease_grace_s = lease_grace_s
        self.memory = MemoryGuard(Cgroups.find(self.lease.parent) if cgroups else None)
        self.public_key = public_key  # checkpoints must verify with it, here and in the worker
        self.interpreters = interpreters or {}
        self.host = host
        self.busy_limit_s = busy_limit_s
        self.log_max_bytes = log_max_bytes
        self.log_files = log_files
        self.configs = configs or {}
        self.secrets = secrets or (lambda node: {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._starting: dict[str, asyncio.Task[subprocess.Popen[bytes]]] = {}

    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        # Refused before anything starts, so the reason is the node's event.
        executable = await asyncio.to_thread(checked_interpreter, checkpoint_dir,
                                             self.public_key, self.interpreters)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        log_path = self.log_dir / node.name / f"{instance.id}.log"
        secrets = {k: v for k, v in self.secrets(node.name).items() if ":" not in k}
        env = {**instance_environment(), **node.env, **secrets,
               "JUPYTER_DEPLOY_INSTANCE": instance.id}
        command = [executable, "-m", "jupyter_deploy.worker",
                   "--checkpoint", str(checkpoint_dir), "--public-key", self.public_key.hex(),
                   "--fd", str(sock.fileno()),
                   "--busy-limit", str(self.busy_limit_s), "--log-file", str(log_path),
                   "--log-max-bytes", str(self.log_max_bytes), "--log-files", str(self.log_files),
                   "--lease", str(self.lease), "--lease-grace", str(self.lease_grace_s)]
        memory = limits(node, self.configs).memory_mb
        starting = asyncio.create_task(self._launch(instance, command, env, sock, log_path,
                                                    memory))
        self._starting[instance.id] = starting
        # Shielded: a start cancelled now still records its process, for stop() to stop.
        process = await asyncio.shield(starting)
        instance.pid = process.pid
        instance.host, instance.port = self.host, port
        instance.log_path = str(log_path)

    async def _launch(self, instance: Instance, command: list[str], env: dict[str, str],
                      sock: socket.socket, log_path: Path, memory_mb: int
                      ) -> subprocess.Popen[bytes]:
        """Start the worker in a thread (fork and exec block), and record it."""
        try:
            process = await asyncio.to_thread(self._spawn, instance.id, command, env, sock,
                                              log_path, memory_mb)
        finally:
            sock.close()  # the worker holds its own copy
            self._starting.pop(instance.id, None)
        self.processes[instance.id] = process
        return process

    def alive(self, instance: Instance) -> bool:
        process = self.processes.get(instance.id)
        return process is not None and process.poll() is None

    def exit_code(self, instance: Instance) -> int | None:
        process = self.processes.get(instance.id)
        return None if process is None else process.poll()

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        starting = self._starting.get(instance.id)
        if starting is not None:  # a process being started is stopped once it exists
            await asyncio.wait([starting])
        process = self.processes.get(instance.id)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if not await _exited(process, timeout_s):
                process.kill()
        await asyncio.to_thread(process.wait)
        self.processes.pop(instance.id, None)
        await asyncio.to_thread(self.memory.remove, instance.id)

    def ended(self, instance: Instance) -> str:
        return self.memory.verdict(instance.id) or super().ended(instance)

    async def sweep(self) -> None:
        """Stop the workers of this state folder that no one supervises (a service killed
        before it could stop them); none is adopted yet."""
        orphans = [pid for pid in await asyncio.to_thread(workers_of, self.lease)
                   if pid not in {p.pid for p in self.processes.values()}]
        if orphans:
            await asyncio.to_thread(stop_pids, orphans)
        if self.memory.cgroups is not None:
            await asyncio.to_thread(self.memory.cgroups.sweep)

    async def close(self) -> None:
        await asyncio.to_thread(self.memory.close)

    def _spawn(self, name: str, command: list[str], env: dict[str, str], sock: socket.socket,
               log_path: Path, memory_mb: int) -> subprocess.Popen[bytes]:
        """Start the worker on `sock`, its output appended to `log_path`, held to
        `memory_mb` (blocks: for a thread)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The worker rotates its own log; what it writes before it takes the file over (an
        # interpreter that cannot import the worker, say) is appended to the same file.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),), env=env, start_new_session=True)
        if memory_mb:
            self.memory.add(name, process.pid, memory_mb)
        return process


async def _exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the process ends within `timeout_s`; woken by its pidfd, not by polling."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:  # gone already
        return True
    except OSError:  # no pidfds here (a kernel before 5.3): a thread waits instead
        return await asyncio.to_thread(_waited, process, timeout_s)
    ended = asyncio.Event()
    loop.add_reader(pidfd, ended.set)
    try:
        async with asyncio.timeout(timeout_s):
            await ended.wait()
        return True
    except TimeoutError:
        return process.poll() is not None
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def instance_environment() -> dict[str, str]:
    """The minimal base of an instance's environment, from the service's: by allow-list."""
    return {name: value for name, value in os.environ.items()
            if name in BASE_ENV or name.startswith("LC_")}


def _waited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the process ends within `timeout_s` (blocks: for a thread)."""
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True
