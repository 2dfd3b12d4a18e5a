"""The query of `GET /nodes/{node}/logs`, and its `follow=true` stream."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from tornado.iostream import StreamClosedError

from ...models import InvalidInput
from ...runtimes.logfiles import REQUEST_ID
from .base import DeployHandler

WHOLE = re.compile(r"[0-9]{1,12}\Z")
MAX_TAIL_BYTES = 16 * 1024 * 1024  # of each log; the whole tail is read into memory
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def log_query(handler: DeployHandler) -> dict[str, Any]:
    """instance, tail_bytes, request_id and follow from the query; a bad value names its field."""
    tail = handler.get_argument("tail", str(64 * 1024))
    if not WHOLE.match(tail) or int(tail) > MAX_TAIL_BYTES:
        raise InvalidInput(f"tail must be a whole number of bytes from 0 to {MAX_TAIL_BYTES}",
                           field="tail")
    request_id = handler.get_argument("request_id", None)
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise InvalidInput("request_id must be 1 to 64 letters, digits, '.', '_' or '-'",
                           field="request_id")
    follow = BOOLEANS.get(handler.get_argument("follow", "false").lower())
    if follow is None:
        raise InvalidInput("follow must be true or false", field="follow")
    return {"instance": handler.get_argument("instance", None), "tail_bytes": int(tail),
            "request_id": request_id, "follow": follow}


async def stream_logs(handler: DeployHandler, items: AsyncIterator[dict[str, Any] | None]
                      ) -> None:
    """Send each item as a JSON line as it comes, until the client goes or the node does
    (`items` gives None at each poll that found nothing)."""
    handler.set_header("Content-Type", "application/x-ndjson")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")
    try:
        await handler.flush()  # the headers now: the client knows the stream has begun
        async for item in items:
            if handler.closed:
                break
            if item is None:
                continue
            handler.write(json.dumps(item) + "\n")
            await handler.flush()
    except StreamClosedError:
        pass
    finally:
        await items.aclose()  # type: ignore[attr-defined]
    if not handler.closed:
        handler.finish()
