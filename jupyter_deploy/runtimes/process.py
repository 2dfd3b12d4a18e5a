"""The embedded runtime: each instance is a subprocess running the worker, in a session of
its own (a signal to the service's process group does not reach it). Its identity is
recorded in the state folder, so that a restart of the service adopts it (issue 13)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets as tokens
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..models import Instance, Node
from ..worker.verify import FORMAT, Refused, manifest
from . import identity
from .base import Reclaimed, Runtime
from .identity import TOKEN_ENV, Adopted, Record
from .interpreters import checked_interpreter
from .lease import LEASE_FILE, LEASE_GRACE_S, is_worker, stop_workers, workers_of
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
                 lease_grace_s: float = LEASE_GRACE_S, cgroups: bool = True,
                 public_key: bytes = b"", interpreters: dict[str, str] | None = None,
                 keep_instances: bool = False, log: logging.Logger | None = None) -> None:
        self.log_dir = log_dir
        self.lease = (log_dir.parent / LEASE_FILE).resolve()  # the folder's (lease.py)
        self.records = self.lease.parent / identity.RECORDS
        self.lease_grace_s = lease_grace_s
        self.keep_instances = keep_instances  # healthy instances outlive a stop, to be adopted
        self.log = log or logging.getLogger("jupyter_deploy.runtimes")
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
        self.adopted: dict[str, Adopted] = {}  # started by a previous start of the service
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
        record = Record(instance.id, 0, 0, self.host, port, tokens.token_urlsafe(32),
                        __version__, FORMAT)  # its checkpoint just verified in FORMAT
        env = {**instance_environment(), **node.env, **secrets,
               "JUPYTER_DEPLOY_INSTANCE": instance.id, TOKEN_ENV: record.token}
        command = [executable, "-m", "jupyter_deploy.worker",
                   "--checkpoint", str(checkpoint_dir), "--public-key", self.public_key.hex(),
                   "--fd", str(sock.fileno()),
                   "--busy-limit", str(self.busy_limit_s), "--log-file", str(log_path),
                   "--log-max-bytes", str(self.log_max_bytes), "--log-files", str(self.log_files),
                   "--lease", str(self.lease), "--lease-grace", str(self.lease_grace_s)]
        memory = limits(node, self.configs).memory_mb
        starting = asyncio.create_task(self._launch(record, command, env, sock, log_path,
                                                    memory))
        self._starting[instance.id] = starting
        # Shielded: a start cancelled now still records its process, for stop() to stop.
        process = await asyncio.shield(starting)
        instance.pid = process.pid
        instance.host, instance.port = self.host, port
        instance.log_path = str(log_path)

    async def _launch(self, record: Record, command: list[str], env: dict[str, str],
                      sock: socket.socket, log_path: Path, memory_mb: int
                      ) -> subprocess.Popen[bytes]:
        """Start the worker in a thread (fork and exec block), and record it."""
        try:
            process = await asyncio.to_thread(self._spawn, record, command, env, sock,
                                              log_path, memory_mb)
        finally:
            sock.close()  # the worker holds its own copy
            self._starting.pop(record.id, None)
        self.processes[record.id] = process
        return process

    def alive(self, instance: Instance) -> bool:
        adopted = self.adopted.get(instance.id)
        if adopted is not None:
            return adopted.alive()
        process = self.processes.get(instance.id)
        return process is not None and process.poll() is None

    def exit_code(self, instance: Instance) -> int | None:
        process = self.processes.get(instance.id)
        return None if process is None else process.poll()

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        starting = self._starting.get(instance.id)
        if starting is not None:  # a process being started is stopped once it exists
            await asyncio.wait([starting])
        adopted = self.adopted.pop(instance.id, None)
        if adopted is not None:
            await adopted.stop(timeout_s)
            await asyncio.to_thread(self._forget, instance.id)
            return
        process = self.processes.get(instance.id)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if not await _exited(process, timeout_s):
                process.kill()
        await asyncio.to_thread(process.wait)
        self.processes.pop(instance.id, None)
        await asyncio.to_thread(self._forget, instance.id)

    def _forget(self, instance_id: str) -> None:
        """Its process has ended: drop its memory watch and its record (blocks: a thread)."""
        self.memory.remove(instance_id)
        identity.remove(self.records, instance_id)

    def ended(self, instance: Instance) -> str:
        if instance.id in self.adopted and not self.memory.verdict(instance.id):
            return "the instance exited (adopted: its exit code went to the service that " \
                   "started it)"
        return self.memory.verdict(instance.id) or super().ended(instance)

    def detach(self, instance: Instance) -> bool:
        return self.keep_instances and self.alive(instance)

    async def reclaim(self, node: Node, instance: Instance, checkpoint_dir: Path
                      ) -> Reclaimed | None:
        """Take back the instance if its recorded process still runs (same pid and start
        time, a worker of this folder) and answers on its port with its token."""
        record = await asyncio.to_thread(identity.read, self.records, instance.id)
        if record is None:
            return None
        if identity.start_time(record.pid) != record.start_time or \
                not is_worker(record.pid, self.lease):  # gone, or the pid is another's now
            await asyncio.to_thread(identity.remove, self.records, instance.id)
            return None
        try:
            await identity.handshake(record, os.getpid())
            self.adopted[instance.id] = Adopted(record)
        except (*identity.HANDSHAKE_ERRORS, ProcessLookupError) as exc:
            self.log.warning("%s: pid %d is not adopted: %s", instance.id, record.pid, exc)
            return None  # still a worker of this folder: the sweep stops it
        instance.pid, instance.host, instance.port = record.pid, record.host, record.port
        instance.log_path = str(self.log_dir / node.name / f"{instance.id}.log")
        memory = limits(node, self.configs).memory_mb
        if memory:
            await asyncio.to_thread(self.memory.add, instance.id, record.pid, memory)
        readable = record.format == FORMAT and await asyncio.to_thread(
            _verifies, checkpoint_dir, self.public_key)
        return Reclaimed(record.package, readable)

    async def sweep(self) -> None:
        """Stop the workers of this state folder that no one supervises (a service killed
        before it could stop them, or one of its instances not adopted); never a process
        that is not such a worker, whatever pid a record names."""
        ours = {p.pid for p in self.processes.values()} | {a.pid for a in self.adopted.values()}
        orphans = [pid for pid in await asyncio.to_thread(workers_of, self.lease)
                   if pid not in ours]
        if orphans:
            self.log.warning("stopping %d worker(s) of this folder that are not its "
                             "instances: pids %s", len(orphans), orphans)
            await asyncio.to_thread(stop_workers, orphans, self.lease)
        for instance_id in await asyncio.to_thread(identity.recorded, self.records):
            if instance_id not in self.processes and instance_id not in self.adopted:
                await asyncio.to_thread(identity.remove, self.records, instance_id)
        if self.memory.cgroups is not None:
            await asyncio.to_thread(self.memory.cgroups.sweep)

    async def close(self) -> None:
        await asyncio.to_thread(self.memory.close)

    def _spawn(self, record: Record, command: list[str], env: dict[str, str],
               sock: socket.socket, log_path: Path, memory_mb: int) -> subprocess.Popen[bytes]:
        """Start the worker on `sock`, its output appended to `log_path`, held to
        `memory_mb`, and write its record (blocks: for a thread)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The worker rotates its own log; what it writes before it takes the file over (an
        # interpreter that cannot import the worker, say) is appended to the same file.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),), env=env, start_new_session=True)
        # Popen returns once the worker has exec'd: its start time is the worker's own
        record.pid, record.start_time = process.pid, identity.start_time(process.pid) or 0
        identity.write(self.records, record)
        if memory_mb:
            self.memory.add(record.id, process.pid, memory_mb)
        return process


async def _exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the process ends within `timeout_s`; woken by its pidfd, not by polling."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:  # gone already
        return True
    except OSError:  # no pidfds here (a kernel before 5.3): a thread waits instead
        return await asyncio.to_thread(_waited, process, timeout_s)
    try:
        return await identity.ended(pidfd, timeout_s) or process.poll() is not None
    finally:
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


def _verifies(checkpoint_dir: Path, public_key: bytes) -> bool:
    """Whether this version reads the checkpoint's signed manifest (blocks: for a thread)."""
    try:
        manifest(checkpoint_dir, public_key)
    except (Refused, OSError, ValueError):
        return False
    return True
