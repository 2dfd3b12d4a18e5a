"""The state folder's lease, which ties process instances to the folder, not to a parent.

The service holds a POSIX write lock on the folder's `service.lock` while it runs (the kernel
drops it the moment the service dies, `kill -9` included). Workers test it with F_GETLK,
which takes nothing, and stop when the service that started or adopted them has not held
it for a grace period: gone, or replaced by one that did not adopt them. A starting service
adopts the workers that are still its instances and stops every other worker of its folder
(issues 12 and 13); the grace is long enough for a restart to fit in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import time
from pathlib import Path
from typing import IO

LEASE_FILE = "service.lock"
# Left by `jupyter deploy stop --everything` before its SIGTERM: the service that reads it at
# its stop takes its instances and gateway workers down with it instead of leaving them.
EVERYTHING_FILE = "stop-everything"
FLOCK = "hhqqi4x"  # struct flock on Linux: type, whence, start, len, pid
LEASE_GRACE_S = 120.0  # a restart of the service, an upgrade included, fits in it


def hold(file: IO[str]) -> None:
    """Take the lease on an open `service.lock` (non-blocking; OSError when taken)."""
    fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)


def holder(path: Path) -> int:
    """The pid of the live service holding the lease at `path`; 0 when none does. For
    workers only: closing any descriptor of the file drops the POSIX locks of the caller's
    process, so the service itself must never call it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        probe = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, probe))
        return 0 if kind == fcntl.F_UNLCK else int(pid)
    finally:
        os.close(fd)


def workers_of(lease: Path) -> list[int]:
    """The worker processes tied to the lease at `lease` (whoever started them)."""
    return [int(proc.name) for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and int(proc.name) != os.getpid()
            and is_worker(int(proc.name), lease)]


def is_worker(pid: int, lease: Path) -> bool:
    """Whether `pid` runs a worker tied to the lease at `lease`."""
    wanted = str(lease).encode()
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"jupyter_deploy.worker" in args and any(
        flag == b"--lease" and value == wanted for flag, value in zip(args, args[1:], strict=False))


def stop_workers(pids: list[int], lease: Path, timeout_s: float = 5.0) -> None:
    """SIGTERM each worker of the lease, SIGKILL what is left after `timeout_s`; a pid that
    no longer runs such a worker is left alone (blocks: for a thread)."""
    pidfds = []
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # gone already
            continue
        if is_worker(pid, lease):  # checked once the pidfd pins the process: not a reused pid
            pidfds.append(pidfd)
        else:
            os.close(pidfd)
    try:
        for pidfd in pidfds:
            _signal(pidfd, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not all(_ended(pidfd) for pidfd in pidfds):
            time.sleep(0.02)
        for pidfd in pidfds:
            if not _ended(pidfd):
                _signal(pidfd, signal.SIGKILL)
    finally:
        for pidfd in pidfds:
            os.close(pidfd)


def _signal(pidfd: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, sig)


def _ended(pidfd: int) -> bool:
    """Whether the process of `pidfd` has exited (its pidfd is readable)."""
    return bool(select.select([pidfd], [], [], 0)[0])


def ask_everything(state_dir: Path) -> None:
    """Ask the folder's service to stop everything at its next stop."""
    (Path(state_dir) / EVERYTHING_FILE).touch(mode=0o600)


def asked_everything(state_dir: Path) -> bool:
    """Whether a stop of everything was asked (and take the request)."""
    try:
        (Path(state_dir) / EVERYTHING_FILE).unlink()
    except FileNotFoundError:
        return False
    return True
