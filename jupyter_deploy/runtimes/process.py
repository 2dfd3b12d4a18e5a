"""The embedded runtime: each instance is a subprocess running the worker."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import Instance, Node
from .base import Runtime
from .limits import limits


class ProcessRuntime(Runtime):
    """Instances are local processes of the kernel's own interpreter, on loopback ports.

    The runtime binds the listening socket itself and hands it to the worker, so the port
    is known at once and cannot be taken by anyone else in between.
    """

    name = "process"

    def __init__(self, log_dir: Path, host: str = "127.0.0.1", busy_limit_s: float = 15.0,
                 log_max_bytes: int = 10 * 1024 * 1024, log_files: int = 3,
                 configs: dict[str, dict[str, Any]] | None = None,
                 secrets: Callable[[str], dict[str, str]] | None = None) -> None:
        self.log_dir = log_dir
        self.host = host
        self.busy_limit_s = busy_limit_s
        self.log_max_bytes = log_max_bytes
        self.log_files = log_files
        self.configs = configs or {}
        self.secrets = secrets or (lambda node: {})
        self.processes: dict[str, subprocess.Popen] = {}

    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        executable = _interpreter(checkpoint_dir / "checkpoint.json")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        log_path = self.log_dir / node.name / f"{instance.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        secrets = {k: v for k, v in self.secrets(node.name).items() if ":" not in k}
        env = {**instance_environment(), **node.env, **secrets,
               "JUPYTER_DEPLOY_INSTANCE": instance.id}
        command = [executable, "-m", "jupyter_deploy.worker",
                   "--checkpoint", str(checkpoint_dir), "--fd", str(sock.fileno()),
                   "--busy-limit", str(self.busy_limit_s), "--log-file", str(log_path),
                   "--log-max-bytes", str(self.log_max_bytes), "--log-files", str(self.log_files)]
        # The worker rotates its own log; what it writes before it takes the file over (an
        # interpreter that cannot import the worker, say) is appended to the same file.
        # Popen runs on the loop (vfork + exec take about a millisecond) so that no
        # cancellation can come between starting the process and recording it.
        try:
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    pass_fds=(sock.fileno(),), env=env, start_new_session=True)
        finally:
            sock.close()
        self.processes[instance.id] = process
        memory = limits(node, self.configs).memory_mb
        if memory:  # the address space: the closest a process gets to a memory limit
            resource.prlimit(process.pid, resource.RLIMIT_AS, (memory << 20, memory << 20))
        instance.pid = process.pid
        instance.host, instance.port = self.host, port
        instance.log_path = str(log_path)

    def alive(self, instance: Instance) -> bool:
        process = self.processes.get(instance.id)
        return process is not None and process.poll() is None

    def exit_code(self, instance: Instance) -> int | None:
        process = self.processes.get(instance.id)
        return None if process is None else process.poll()

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        process = self.processes.get(instance.id)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while process.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.02)
            if process.poll() is None:
                process.kill()
        await asyncio.to_thread(process.wait)
        self.processes.pop(instance.id, None)


def instance_environment() -> dict[str, str]:
    """The service's environment without its credentials: instances run third parties'
    requests, and must not be able to act on the Jupyter server or the deploy service."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith(("JUPYTER_DEPLOY_", "JPY_")) and name != "JUPYTER_TOKEN"}


def _interpreter(checkpoint_json: Path) -> str:
    """The interpreter of the kernel that pinned the checkpoint, when it is still there."""
    executable = json.loads(checkpoint_json.read_text())["environment"].get("executable", "")
    if executable and os.access(executable, os.X_OK):
        return executable
    return sys.executable
