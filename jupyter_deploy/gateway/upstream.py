"""Pooled keep-alive connections from the gateway to one instance."""

from __future__ import annotations

import asyncio
import time

from ..http.client import ClientProtocol


class SendFailed(Exception):
    """Nothing of the request reached the instance: it is safe to try another one."""


class Pool:
    """Idle connections to one address, reused across requests."""

    def __init__(self, host: str, port: int, max_response: int, idle_timeout_s: float = 0.0,
                 token: str = "") -> None:
        self.host = host
        # an instance beyond loopback answers only with its token (issue 14, worker/token.py)
        self.instance_token = token
        self.token = b"x-instance-token: %s\r\n" % token.encode() if token else b""
        self.port = port
        self.max_response = max_response
        self.idle_timeout_s = idle_timeout_s  # 0: idle connections are kept until they close
        self.idle: list[ClientProtocol] = []

    async def request(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send `head` (request line and headers, without Content-Length) and `body`."""
        connection = None
        now = time.monotonic()
        while self.idle:
            candidate = self.idle.pop()
            if self.idle_timeout_s and now - candidate.parked_at > self.idle_timeout_s:
                candidate.close()
            elif candidate.still_open():
                connection = candidate
                break
        if connection is None:
            try:
                _, connection = await asyncio.get_running_loop().create_connection(
                    lambda: ClientProtocol(self.max_response), self.host, self.port)
            except OSError as exc:
                raise SendFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        head += self.token + b"Content-Length: %d\r\n\r\n" % len(body)
        data = [head + body] if len(body) < 256 * 1024 else [head, body]
        try:
            result = await connection.request(data)
        except BaseException:
            connection.close()
            raise
        if connection.usable:
            connection.parked_at = time.monotonic()
            self.idle.append(connection)
        return result

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
