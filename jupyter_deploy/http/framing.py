"""HTTP/1.1 framing shared by both ends of the data plane: heads and chunked bodies."""

from __future__ import annotations

import re

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """Malformed HTTP from the peer."""


def parse_head(data: bytes) -> tuple[str, dict[str, str]]:
    """The start line and the headers (lower-case names, repeated ones joined)."""
    lines = data.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(f"malformed header line {line[:80]!r}")
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return lines[0], headers


CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\Z")
DIGITS = re.compile(r"[0-9]{1,20}\Z")


class ChunkedBody:
    """Incremental decoder of a chunked body."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, buffer: bytearray) -> bool | None:
        """Consume what `buffer` holds; True when the body is complete, None if over the limit."""
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                if len(buffer) > 1024:
                    raise HttpError("chunk size line too long")
                return False
            match = CHUNK_SIZE.match(bytes(buffer[:line_end]))
            if match is None:
                raise HttpError("malformed chunk size")
            size = int(match.group(1), 16)
            if size == 0:  # then optional trailer lines, then an empty line
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if buffer.startswith(b"\r\n", line_end + 2):
                    del buffer[:line_end + 4]
                    return True
                if trailer_end < 0:
                    return False
                del buffer[:trailer_end + 4]
                return True
            if self.size + size > self.limit:
                return None
            start = line_end + 2
            if len(buffer) < start + size + 2:
                return False
            if buffer[start + size:start + size + 2] != b"\r\n":
                raise HttpError("chunk data not followed by CRLF")
            self.parts.append(bytes(buffer[start:start + size]))
            self.size += size
            del buffer[:start + size + 2]

    def body(self) -> bytes:
        return b"".join(self.parts)
