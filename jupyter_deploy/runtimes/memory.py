"""Memory limits of process instances: a cgroup memory controller where one can be made,
else the resident set watched by a thread. An instance over its limit is killed, and the
verdict names the limit and the peak (issue 12).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
RECYCLE_EXIT = 70  # a worker that raised MemoryError answers, then exits with this code
MB = 1 << 20


@dataclass
class Watched:
    """One instance under a limit: its process, limit, peak so far, and cgroup if any."""

    pid: int
    limit_mb: int
    cgroup: Path | None = None
    peak_mb: int = 0
    killed: bool = False


def own_cgroup(hierarchy: Path, controller: str) -> Path | None:
    """This process's cgroup in `hierarchy` (v1: the `controller` line; v2: the `0::` line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (not controller and not controllers):
            where = hierarchy / path.lstrip("/")
            # inside a cgroup namespace the mount's root may already be our own cgroup
            return where if where.is_dir() else hierarchy
    return None


class Cgroups:
    """Per-instance memory cgroups (v1 `memory` controller, or v2 with `memory` enabled)."""

    def __init__(self, base: Path, v2: bool) -> None:
        self.base, self.v2 = base, v2

    @classmethod
    def find(cls, folder: Path) -> Cgroups | None:
        """A place for this state folder's instance cgroups, or None where none can be made."""
        tag = "jupyter_deploy-" + hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        v1 = own_cgroup(CGROUP_ROOT / "memory", "memory")
        if v1 is not None and (v1 / "memory.limit_in_bytes").exists():
            return cls._made(v1 / tag, v2=False)
        v2 = own_cgroup(CGROUP_ROOT, "")
        if v2 is not None and "memory" in _read(CGROUP_ROOT / "cgroup.controllers"):
            # v2 puts processes in leaves only: ours sits beside the service's own cgroup
            return cls._made(v2.parent / tag, v2=True)
        return None

    @classmethod
    def _made(cls, base: Path, v2: bool) -> Cgroups | None:
        try:
            base.mkdir(exist_ok=True)
            if v2:
                (base / "cgroup.subtree_control").write_text("+memory")
        except OSError:
            return None
        return cls(base, v2)

    def join(self, name: str, pid: int, limit_mb: int) -> Path:
        """Put `pid` into a new cgroup `name` limited to `limit_mb`."""
        group = self.base / name
        group.mkdir(exist_ok=True)
        limit = str(limit_mb * MB)
        (group / ("memory.max" if self.v2 else "memory.limit_in_bytes")).write_text(limit)
        if self.v2:
            with contextlib.suppress(OSError):
                (group / "memory.swap.max").write_text("0")
        (group / "cgroup.procs").write_text(str(pid))
        return group

    def peak_mb(self, group: Path) -> int:
        """The most the cgroup ever used."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        value = _read(group / name).strip()
        return int(value) // MB if value.isdigit() else 0

    def oom_killed(self, group: Path) -> bool:
        """Whether the kernel killed something in the cgroup for going over its limit."""
        text = _read(group / ("memory.events" if self.v2 else "memory.oom_control"))
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def remove(self, group: Path) -> None:
        """Delete the cgroup once its processes are gone."""
        with contextlib.suppress(OSError):
            group.rmdir()

    def close(self) -> None:
        """Delete this folder's cgroup once no instance's is left in it."""
        self.remove(self.base)

    def sweep(self) -> None:
        """Delete the empty cgroups a previous start of the service left behind."""
        for group in self.base.iterdir() if self.base.is_dir() else []:
            if group.is_dir() and not _read(group / "cgroup.procs").strip():
                self.remove(group)


class MemoryGuard:
    """Keeps every watched instance under its limit; a thread samples resident sets."""

    def __init__(self, cgroups: Cgroups | None, interval_s: float = 0.1) -> None:
        self.cgroups = cgroups
        self.interval_s = interval_s
        self.watched: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, pid: int, limit_mb: int) -> None:
        """Hold `pid` to `limit_mb` (runs in a thread: cgroup writes touch the file system)."""
        watched = Watched(pid, limit_mb)
        if self.cgroups is not None:
            try:
                watched.cgroup = self.cgroups.join(name, pid, limit_mb)
            except OSError:  # this one could not be placed: watch its resident set instead
                watched.cgroup = None
        with self._lock:
            self.watched[name] = watched
        if watched.cgroup is None and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="memory-guard",
                                            daemon=True)
            self._thread.start()

    def verdict(self, name: str) -> str | None:
        """Why the instance ended, when its memory limit ended it."""
        watched = self.watched.get(name)
        if watched is None:
            return None
        if watched.cgroup is not None and self.cgroups is not None:
            watched.peak_mb = max(watched.peak_mb, self.cgroups.peak_mb(watched.cgroup))
            watched.killed = watched.killed or self.cgroups.oom_killed(watched.cgroup)
        if not watched.killed:
            return None
        return (f"killed: over its memory limit of {watched.limit_mb} MB "
                f"(peak {watched.peak_mb} MB)")

    def remove(self, name: str) -> None:
        """Forget the instance (its process has ended)."""
        with self._lock:
            watched = self.watched.pop(name, None)
        if watched is not None and watched.cgroup is not None and self.cgroups is not None:
            self.cgroups.remove(watched.cgroup)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.cgroups is not None:
            self.cgroups.close()

    def _watch(self) -> None:
        """Sample each resident set; kill what is over its limit (the thread's body)."""
        while not self._stop.wait(self.interval_s):
            with self._lock:
                watched = [w for w in self.watched.values() if w.cgroup is None]
            for one in watched:
                rss = resident_mb(one.pid)
                one.peak_mb = max(one.peak_mb, rss)
                if rss > one.limit_mb and not one.killed:
                    one.killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(one.pid, signal.SIGKILL)


def resident_mb(pid: int) -> int:
    """The process's resident set (VmRSS), in MB; 0 once it is gone."""
    for line in _read(Path(f"/proc/{pid}/status")).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
