"""Pooled keep-alive HTTP/1.1 connections from the service to one instance."""

from __future__ import annotations

import asyncio


class SendFailed(Exception):
    """Nothing of the request reached the instance: it is safe to try another one."""


class UpstreamError(Exception):
    """The request was sent but no complete response came back."""


class ResponseTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the instance answered {size} bytes")
        self.size = size


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()

    async def request(
        self, head: bytes, body: bytes, max_response: int
    ) -> tuple[int, dict[str, str], bytes]:
        """Send `head` (request line and headers, without Content-Length) and `body`."""
        self.writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body))
        if body:
            self.writer.write(body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                length = int(headers["content-length"])
                if length > max_response:
                    raise ResponseTooLarge(length)
                data = await self.reader.readexactly(length)
            elif "chunked" in headers.get("transfer-encoding", ""):
                data = await self._read_chunked(max_response)
            else:
                data = await self.reader.read(max_response + 1)
                if len(data) > max_response:
                    raise ResponseTooLarge(len(data))
                self.close()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError, IndexError) as exc:
            self.close()
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    async def _read_chunked(self, max_response: int) -> bytes:
        parts = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(parts)
            if len(parts) + size > max_response:
                raise ResponseTooLarge(len(parts) + size)
            parts += await self.reader.readexactly(size)
            await self.reader.readexactly(2)


class Pool:
    """Idle connections to one address, reused across requests."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[Connection] = []

    async def request(
        self, head: bytes, body: bytes, max_response: int
    ) -> tuple[int, dict[str, str], bytes]:
        connection = None
        while self.idle:
            candidate = self.idle.pop()
            if candidate.usable:
                connection = candidate
                break
            candidate.close()
        if connection is None:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise SendFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
            connection = Connection(reader, writer)
        try:
            result = await connection.request(head, body, max_response)
        except BaseException:
            connection.close()
            raise
        if connection.usable:
            self.idle.append(connection)
        return result

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
