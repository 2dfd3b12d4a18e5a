"""The listening side of the HTTP layer: accepted connections, their caps, and a stop in
order (no new connections, idle ones closed, answers in flight given)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from .framing import Limits
from .messages import App
from .server import ServerProtocol


def bind(host: str, port: int, reuse_port: bool = False, who: str = "the server"
         ) -> socket.socket:
    """A socket bound to `port` (0: any free one), not listening yet; `reuse_port`: others
    may bind the same port (the kernel balances connections). An address in use is an
    OSError that says `who` cannot listen where."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"{who} cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


class HttpServer:
    """A listening socket and the connections it accepted, so that it can stop in order."""

    def __init__(self, app: App, max_body: int, idle_timeout_s: float = 300.0,
                 body_timeout_s: float = 15.0, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.settings = (app, max_body, idle_timeout_s, body_timeout_s, self.limits)
        self.connections: set[ServerProtocol] = set()
        self.per_client: dict[str, int] = {}
        self.server: asyncio.Server | None = None
        self._drained = asyncio.Event()

    async def start(self, sock: socket.socket, backlog: int = 100) -> None:
        """Serve on `sock`, a bound socket."""
        self.server = await asyncio.get_running_loop().create_server(
            self._connection, sock=sock, backlog=backlog)

    def _connection(self) -> ServerProtocol:
        protocol = ServerProtocol(*self.settings)
        protocol.server = self
        return protocol

    def admit(self, connection: ServerProtocol) -> str | None:
        """Count a new connection in; why not, past the caps on connections."""
        count = self.per_client.get(connection.client, 0)
        if len(self.connections) >= self.limits.max_connections:
            return f"the server holds {self.limits.max_connections} connections (max_connections)"
        if count >= self.limits.max_per_client:
            return f"{count} connections from your address (max_per_client)"
        self.connections.add(connection)
        self.per_client[connection.client] = count + 1
        return None

    def lost(self, connection: ServerProtocol) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        left = self.per_client.pop(connection.client, 1) - 1
        if left:
            self.per_client[connection.client] = left
        if not self.connections:
            self._drained.set()

    async def stop(self, timeout_s: float) -> None:
        """Stop accepting, close idle keep-alive connections, wait up to `timeout_s` for the
        answers in flight (each then closes its connection), and close what is left."""
        if self.server is None:
            return
        self.server.close()  # new connections are refused from now on
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._drained.wait()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        self.server = None
