"""The channel between the deploy service and its gateway workers: JSON messages, each
after its length, on a Unix socket in the state folder (0600), opened by a worker's hello
with the token of the state folder (a file only the service's user can read).

Service to worker: `state` (the whole routing state, a version), `ping`, `stop`. What the
workers must know of each other at once (admission control) is on a board (board.py).
Worker to service: `hello`, `serving`, `ack` (a version applied), `load` (requests held and
in flight), `missed`, `stuck`, `capture`, `shadow`, `note`, `pong`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

MAX_MESSAGE = 64 * 1024 * 1024  # a state of many nodes, or a captured request of 2 x 1 MB
HEADER = 4
SOCKET_PATH_MAX = 100  # bytes of a Unix socket's path, with room under Linux's 108


class ChannelClosed(Exception):
    """The other end went away, or sent what is not a message."""


def folder(state_dir: Path) -> Path:
    """The gateway workers' folder of a state folder (0700)."""
    path = Path(state_dir) / "gateway"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def token(state_dir: Path) -> str:
    """The state folder's channel token, made on first use (0600)."""
    path = folder(state_dir) / "token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
    return value


def opens(sent: Any, expected: str) -> bool:
    """Whether a hello's token is the state folder's."""
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def socket_path(state_dir: Path) -> Path:
    """The channel's socket: in the state folder, unless that path is too long for a Unix
    socket (108 bytes); then in a folder of the user's own (0700) under the temporary one."""
    path = folder(state_dir) / "channel.sock"
    if len(str(path).encode()) < SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"jupyter-deploy-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid() or short.stat().st_mode & 0o077:
        raise OSError(f"{short} is not this user's own folder (0700)")
    return short / f"{digest}.sock"


class Channel:
    """One end of an open channel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def send(self, message: dict[str, Any]) -> None:
        """Queue `message` on the socket now (in order; never blocks the loop)."""
        if self.writer.is_closing():
            return
        data = json.dumps(message, separators=(",", ":")).encode()
        self.writer.write(len(data).to_bytes(HEADER, "big") + data)

    async def receive(self) -> dict[str, Any]:
        """The next message; ChannelClosed when the other end is gone."""
        try:
            size = int.from_bytes(await self.reader.readexactly(HEADER), "big")
            if size > MAX_MESSAGE:
                raise ChannelClosed(f"a message of {size} bytes")
            message = json.loads(await self.reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise ChannelClosed(str(exc)) from None
        if not isinstance(message, dict):
            raise ChannelClosed("a message that is not an object")
        return message

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise ChannelClosed(str(exc)) from None

    def close(self) -> None:
        self.writer.close()
