"""The gateway worker processes of a state folder (issue 13): started detached, so that they
outlive the service; taken back by the next service (a pid file per slot, checked against
the process's command line, then its hello on the channel); restarted when one dies.

A worker is `python -m jupyter_deploy.gateway.worker_main STATE_DIR SLOT`: it reads its
settings from `gateway/config.json` and the channel token from `gateway/token` (both 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..http.listener import bind
from . import board
from .channel import folder

MODULE = "jupyter_deploy.gateway.worker_main"
RESPAWN_S = 0.5  # at least this long between two starts of one slot (a crash loop)
WATCH_S = 0.2  # how often the slots are looked at


def pid_file(state_dir: Path, slot: int) -> Path:
    return folder(state_dir) / f"worker-{slot}.pid"


def board_path(state_dir: Path) -> Path:
    return folder(state_dir) / "board"


def metrics_dir(state_dir: Path) -> Path:
    return folder(state_dir) / "metrics"


def running(state_dir: Path, pid: int) -> bool:
    """Whether `pid` is a gateway worker of `state_dir` (not a reused pid), and not a zombie."""
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and MODULE.encode() in parts and str(state_dir).encode() in parts


def exited(pid: int) -> bool:
    """Whether `pid` has ended (gone, or a zombie; its command line goes first, on exit)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def worker_pids(state_dir: Path) -> dict[int, int]:
    """slot -> pid of the gateway workers of `state_dir` that run now."""
    found = {}
    for path in folder(state_dir).glob("worker-*.pid"):
        try:
            slot, pid = int(path.stem.split("-", 1)[1]), int(path.read_text())
        except ValueError:
            continue
        if running(state_dir, pid):
            found[slot] = pid
    return found


def stop_workers(state_dir: Path, timeout_s: float = 10.0) -> list[int]:
    """Stop every gateway worker of `state_dir` (SIGTERM: they answer what is in flight),
    killed past `timeout_s`; return their pids. Needs no running service."""
    state_dir = Path(state_dir)
    pids = worker_pids(state_dir)
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while not all(exited(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids.values():
        if not exited(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while not all(exited(p) for p in pids.values()) and time.monotonic() < deadline + 5:
        time.sleep(0.02)
    for slot in pids:
        pid_file(state_dir, slot).unlink(missing_ok=True)
    return list(pids.values())


def reserve(host: str, port: int, exclusive: bool = False) -> socket.socket:
    """A socket bound to `port` (0: any free one) with SO_REUSEPORT, not listening: it keeps
    the port for the workers, which bind it too. `exclusive`: the port must be free first,
    since SO_REUSEPORT would let another service's gateway share it and split its traffic."""
    if exclusive and port:
        bind(host, port, who="the gateway").close()
    return bind(host, port, reuse_port=True, who="the gateway")


def code_digest() -> str:
    """Digest of the package's code: workers that run other code (an upgrade) are replaced,
    since the routing state they are sent may have another shape."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class Fleet:
    """Keeps `count` gateway workers running for a state folder."""

    def __init__(self, state_dir: Path, count: int, settings: dict[str, Any],
                 log: logging.Logger) -> None:
        self.state_dir = Path(state_dir)
        self.count = count
        self.settings = {**settings, "code": code_digest()}  # host, port, grpc_port, ...
        self.log = log
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # slot -> the worker we started
        self.pids: dict[int, int] = {}  # slot -> pid
        self.adopted: list[int] = []  # slots taken back from a previous service
        self.restarts = 0
        self._started_at: dict[int, float] = {}
        self._reserved: list[socket.socket] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> str:
        """Digest of the settings the workers run with."""
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()

    def prepare(self) -> None:
        """Ports and settings: the running workers' ports when they are taken back."""
        live = worker_pids(self.state_dir)
        path = folder(self.state_dir) / "config.json"
        previous: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads(path.read_text())
        for name in ("port", "grpc_port"):
            if live and not self.settings[name] and previous.get("host") == self.settings["host"]:
                self.settings[name] = previous.get(name, 0)
        host = self.settings["host"]
        for name in ("port", "grpc_port"):
            sock = reserve(host, self.settings[name], exclusive=not live)
            self._reserved.append(sock)
            self.settings[name] = sock.getsockname()[1]
        if not live:  # a fresh start: the counters start again, as they did in one process
            shutil.rmtree(metrics_dir(self.state_dir), ignore_errors=True)
            board.create(board_path(self.state_dir))
        metrics_dir(self.state_dir).mkdir(mode=0o700, exist_ok=True)
        data = json.dumps({**self.settings, "config": self.config}).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        for slot, pid in live.items():
            if slot < self.count:
                self.pids[slot] = pid
                self.adopted.append(slot)
            else:  # fewer workers wanted now
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def start(self) -> None:
        """Start the slots that have no worker, and watch them from now on."""
        for slot in range(self.count):
            if slot not in self.pids:
                self.spawn(slot)
        self._task = asyncio.ensure_future(self._watch())

    def release(self) -> None:
        """The workers listen: the ports need no keeping any more."""
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()

    def spawn(self, slot: int) -> None:
        """Start a worker for `slot`, in a session of its own (a signal to the service's
        process group does not reach it), logging to gateway/worker-SLOT.log."""
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(self.state_dir))}
        log = open(folder(self.state_dir) / f"worker-{slot}.log", "ab")  # noqa: SIM115
        with log:
            child = subprocess.Popen(
                [sys.executable, "-m", MODULE, str(self.state_dir), str(slot)], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        self.children[slot] = child
        self.pids[slot] = child.pid
        self._started_at[slot] = time.monotonic()
        pid_file(self.state_dir, slot).write_text(str(child.pid))

    def alive(self, slot: int) -> bool:
        child = self.children.get(slot)
        if child is not None and child.poll() is not None:  # reaped: no zombie left
            return False
        pid = self.pids.get(slot)
        return pid is not None and running(self.state_dir, pid)

    def replace(self, slot: int) -> None:
        """Stop the worker of `slot` (it runs other settings); the watch starts another."""
        pid = self.pids.get(slot)
        if pid is not None and self.alive(slot):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            for slot in range(self.count):
                if self.alive(slot):
                    continue
                if time.monotonic() - self._started_at.get(slot, 0.0) < RESPAWN_S:
                    continue
                self.log.warning("gateway worker %d (pid %s) is gone: starting another",
                                 slot, self.pids.get(slot))
                self.restarts += 1
                # what it had in flight is no one's now: the others must not count it
                board.Board(board_path(self.state_dir), slot, self.count).close()
                try:
                    self.spawn(slot)
                except OSError:
                    self.log.exception("gateway worker %d could not start", slot)

    async def stop(self, everything: bool = False) -> None:
        """Stop watching; with `everything`, stop the workers too (else they keep serving)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.release()
        if everything:
            await asyncio.to_thread(stop_workers, self.state_dir)
            for child in self.children.values():
                child.poll()
