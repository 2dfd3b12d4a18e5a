"""The requests and answers of the HTTP layer, and what an app served by it provides."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .server import ServerProtocol

REASONS = {s.value: s.phrase for s in HTTPStatus}
NO_BODY = {204, 304}  # and 1xx: answers that never carry a body (RFC 9110 6.4.1)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    fields: list[tuple[str, str]] | None = None  # another server's fields, passed as they came

    def encode(self, close: bool, request_id: str = "", head_only: bool = False
               ) -> list[bytes]:
        """The bytes of the answer; `head_only` for a HEAD request (no body, same fields)."""
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}\r\n"]
        framed = self.status in NO_BODY or self.status < 200
        if self.fields is not None:
            head += [f"{k}: {v}\r\n" for k, v in self.fields]
            framed = framed or any(k.lower() == "content-length" for k, _ in self.fields)
        if not framed:
            head.append(f"Content-Length: {len(self.body)}\r\n")
        if request_id:
            head.append(f"x-request-id: {request_id}\r\n")
        if self.headers:
            head += [f"{k}: {v}\r\n" for k, v in self.headers.items()]
        if self.fields is None and "Content-Type" not in (self.headers or {}):
            head.append("Content-Type: application/json\r\n")
        if close:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        encoded = "".join(head).encode("latin-1")
        body = b"" if head_only or self.status in NO_BODY else self.body
        if len(body) < 256 * 1024:  # one send for small answers; no copy of big ones
            return [encoded + body]
        return [encoded, body]


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # names in lower case, repeated fields joined with ", "
    body: bytes = b""
    connection: ServerProtocol | None = None
    id: str = ""  # given by the app's `identify`, returned in `x-request-id`
    fields: list[tuple[str, str]] | None = None  # the header fields as they came
    client: str = ""  # the peer's address

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def abandoned(self) -> bool:
        """The client hung up before its answer (a gateway that timed out, say)."""
        return self.connection is not None and self.connection.transport is None


class App(Protocol):
    def check(self, request: Request) -> Any:
        """Called when the headers are in: a Response refuses the request before its body
        is read; anything else is handed to `handle` as its context."""

    def handle(self, request: Request, context: Any) -> Response | Awaitable[Response]:
        """Answer a complete request."""

    # Optional: `identify(headers) -> str` names each request; every answer to it then
    # carries the name in `x-request-id`.
