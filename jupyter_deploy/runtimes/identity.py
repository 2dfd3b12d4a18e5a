"""Who a process instance is, so that the next start of the service can take it back
(issue 13): a record per instance in the state folder (pid, process start time, port,
token), and the checks that a pid is still that process and that it answers with its token.

A pid alone is not an identity: after the process ends the kernel hands the number to any
new process. The start time (`/proc/PID/stat` field 22, in clock ticks since boot) does
not repeat for a pid, so a recorded (pid, start time) that no longer match is never
signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..http.client import ClientProtocol, UpstreamError

RECORDS = "instances"  # the folder of records, beside the lease
TOKEN_ENV = "JUPYTER_DEPLOY_INSTANCE_TOKEN"  # how the worker gets its token (not argv)
TOKEN_HEADER = "x-instance-token"
HANDSHAKE_ERRORS = (OSError, TimeoutError, UpstreamError, ValueError)


@dataclass
class Record:
    """What the service that started an instance knew of it."""

    id: str
    pid: int
    start_time: int
    host: str
    port: int
    token: str
    package: str  # the jupyter_deploy version that started it
    format: int  # the checkpoint manifest format it read its checkpoint in


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot); None once it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22; fields[0] is field 3


def write(folder: Path, record: Record) -> None:
    """Write the record whole (0600, then renamed into place; blocks: for a thread)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    tmp = folder / f".{record.id}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(record), f)
    os.replace(tmp, folder / f"{record.id}.json")


def read(folder: Path, instance_id: str) -> Record | None:
    """The instance's record; None when there is none or it cannot be read as one."""
    try:
        data = json.loads((folder / f"{instance_id}.json").read_text())
        record = Record(**data)
    except (OSError, ValueError, TypeError):
        return None
    ints = (record.pid, record.start_time, record.port, record.format)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or \
            not all(isinstance(v, str) for v in (record.host, record.token, record.package)):
        return None
    return record


def remove(folder: Path, instance_id: str) -> None:
    with contextlib.suppress(OSError):
        (folder / f"{instance_id}.json").unlink()


def recorded(folder: Path) -> list[str]:
    """The ids of the instances that have a record."""
    if not folder.is_dir():
        return []
    return [p.stem for p in folder.glob("*.json")]


async def handshake(record: Record, owner: int, timeout_s: float = 2.0) -> dict[str, Any]:
    """Ask the process on the record's port to confirm it is the instance, with its token,
    and to take `owner` as the service it serves; its answer, or raises (HANDSHAKE_ERRORS)."""
    body = json.dumps({"instance": record.id, "owner": owner}).encode()
    head = (f"POST /adopt HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n"
            f"{TOKEN_HEADER}: {record.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    async with asyncio.timeout(timeout_s):
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: ClientProtocol(1 << 16), record.host, record.port)
        try:
            status, _, answer = await connection.request([head, body])
        finally:
            connection.close()
    data = json.loads(answer) if answer else None
    if status != 200 or not isinstance(data, dict) or data.get("instance") != record.id \
            or data.get("pid") != record.pid:
        raise ValueError(f"the process on port {record.port} answered {status}, not as "
                         f"instance {record.id}")
    return data


class Adopted:
    """A worker a previous start of the service started: not our child, so it is followed
    by a pidfd (which names that process, never a later one with the same pid)."""

    def __init__(self, record: Record) -> None:
        self.pid, self.start_time = record.pid, record.start_time
        self.pidfd = os.pidfd_open(record.pid)
        if start_time(record.pid) != record.start_time:  # it ended before the pidfd named it
            os.close(self.pidfd)
            raise ProcessLookupError(record.pid)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; the pidfd is closed afterwards."""
        try:
            for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
                if not self.alive():
                    return
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self.pidfd, sig)
                if await ended(self.pidfd, wait_s):
                    return
        finally:
            os.close(self.pidfd)


async def ended(pidfd: int, timeout_s: float) -> bool:
    """Whether the process of `pidfd` ends within `timeout_s` (the pidfd turns readable)."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(pidfd, done.set)
    try:
        async with asyncio.timeout(timeout_s):
            await done.wait()
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
