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
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

MAX_MESSAGE = 64 * 1024 * 1024  # a state of many nodes, or a captured request of 2 x 1 MB
HEADER = 4


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
    return folder(state_dir) / "channel.sock"


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
