"""Probing an instance over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..http11 import ClientProtocol


async def probe(host: str, port: int, path: str, timeout_s: float) -> tuple[int, Any]:
    """GET `path` on a new connection; (status, decoded JSON or None).

    Raises OSError, TimeoutError or UpstreamError when there is no answer.
    """
    async with asyncio.timeout(timeout_s):
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: ClientProtocol(1 << 20), host, port)
        try:
            head = f"GET {path} HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n"
            status, _, body = await connection.request([head.encode()])
        finally:
            connection.close()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None
