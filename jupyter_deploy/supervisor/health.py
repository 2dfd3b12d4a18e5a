"""Probing an instance over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..gateway.upstream import Connection


async def probe(host: str, port: int, path: str, timeout_s: float) -> tuple[int, Any]:
    """GET `path`; return (status, decoded JSON or None). Raises OSError/TimeoutError."""

    async def get() -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection(host, port)
        connection = Connection(reader, writer)
        try:
            head = f"GET {path} HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n".encode()
            status, _, body = await connection.request(head, b"", 1 << 20)
        finally:
            connection.close()
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    return await asyncio.wait_for(get(), timeout_s)
