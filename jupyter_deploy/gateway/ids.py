"""Request ids: the caller's `x-request-id` when it is short and safe, else a new one."""

from __future__ import annotations

import itertools
import secrets

from ..runtimes.logfiles import REQUEST_ID

_prefix = secrets.token_hex(6)  # per process: ids stay unique across restarts
_count = itertools.count(1)


def new_request_id() -> str:
    return f"{_prefix}-{next(_count):x}"


def request_id(headers: dict[str, str]) -> str:
    """The id of a request, from its headers (lower-case names)."""
    given = headers.get("x-request-id")
    if given is not None and REQUEST_ID.match(given):
        return given
    return new_request_id()
