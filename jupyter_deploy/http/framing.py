"""HTTP/1.1 rules shared by both ends of the data plane, above what llhttp checks itself:
the limits of a connection, and the RFC 9112 / 9110 checks of a request's head."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any

MAX_HEAD = 64 * 1024
# Connections read into one buffer per thread (asyncio.BufferedProtocol): asyncio's own reads
# allocate 256 KB each, and a 1-byte read cost 47 us that way against 4 us into a buffer here
READ_SIZE = 64 * 1024
_reads = threading.local()
VERSIONS = ("1.0", "1.1")


def read_buffer() -> memoryview:
    """The buffer this thread's connections read into (a read is parsed before the next)."""
    buffer: memoryview | None = getattr(_reads, "buffer", None)
    if buffer is None:
        buffer = _reads.buffer = memoryview(bytearray(READ_SIZE))
    return buffer


class Refusal(Exception):
    """A request the HTTP layer answers itself with an error of the table, then closes."""

    def __init__(self, code: str, message: str, linger: bool = False,
                 request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.linger = linger  # keep reading (and dropping) a while, so the client sees it
        self.request_id = request_id  # of the request refused, when its head was read


@dataclass
class Limits:
    """What one connection of a server may cost; each a setting with a sane default."""

    head_timeout_s: float = 10.0  # from the first byte of a request to the end of its head
    max_head: int = MAX_HEAD  # request line and header fields
    max_trailer: int = 8 * 1024  # trailer fields of a chunked body
    max_buffered: int = 1024 * 1024  # answer bytes queued for a client that does not read
    stall_timeout_s: float = 60.0  # how long such a client may read nothing before it goes
    max_pipeline: int = 16  # requests read ahead of the one being answered
    max_connections: int = 10_000  # per server
    max_per_client: int = 1_000  # per client address


def check_limits(values: dict[str, Any]) -> Limits:
    """`Limits` over the defaults from a setting's {name: number}; ValueError naming what is
    wrong (an unknown name, or a number that is not positive)."""
    known = {f.name: f.type for f in fields(Limits)}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"gateway_limits.{name} is not a limit (known: "
                             f"{', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or (
                not name.endswith("_s") and not float(value).is_integer()):
            raise ValueError(f"gateway_limits.{name} must be a positive "
                             f"{'number of seconds' if name.endswith('_s') else 'whole number'}")
    return Limits(**{name: value if name.endswith("_s") else int(value)
                     for name, value in values.items()})


def tokens(value: str) -> list[str]:
    """The elements of a comma-separated list field, lower-cased (RFC 9110 5.6.1)."""
    return [token.strip().lower() for token in value.split(",") if token.strip()]


def wants_close(version: str, connection: str) -> bool:
    """Whether the connection ends after this message (RFC 9112 9.3)."""
    options = tokens(connection)
    if "close" in options:
        return True
    return version == "1.0" and "keep-alive" not in options


def check_head(version: str, headers: dict[str, str], repeated: set[str]) -> None:
    """Refuse what llhttp lets through: versions we do not speak, a missing or repeated Host,
    transfer codings other than one final chunked (RFC 9112 3.2, 6.1)."""
    if version not in VERSIONS:
        if version.startswith("0."):
            raise Refusal("bad_request", f"HTTP/{version} requests are not served")
        raise Refusal("version_not_supported", f"HTTP/{version} is not supported; use HTTP/1.1")
    if version == "1.1" and "host" not in headers:
        raise Refusal("bad_request", "an HTTP/1.1 request needs a Host header")
    if "host" in repeated:
        raise Refusal("bad_request", "more than one Host header")
    coding = headers.get("transfer-encoding")
    if coding is not None:
        codings = tokens(coding)
        if not codings or codings[-1] != "chunked" or codings.count("chunked") > 1:
            raise Refusal("bad_request", "Transfer-Encoding must end with chunked, once")
        if len(codings) > 1:  # gzip, deflate, ... before chunked: none is decoded here
            raise Refusal("not_implemented", f"transfer coding {codings[0]!r} is not implemented")
