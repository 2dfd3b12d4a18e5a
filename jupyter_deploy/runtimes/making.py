"""What a create is making in a thread, kept until `stop()` has seen it.

A start is called off (its node deleted, the service stopping) by cancelling its task, and
the task may be cancelled again before it ends (an event loop that closes cancels what is
left). A thread cannot be stopped: the engine call in it goes on to make the container or
service. So the call's future is kept per instance until the create has recorded what it
made, and `stop()` waits for it and stops that too, however often the create was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Makings:
    """Engine calls under way for instances' creates, by instance id."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[Any]] = {}

    async def run(self, instance_id: str, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a thread, kept for `settled()` until `made()` is told."""
        future: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(call, *args))
        self._calls[instance_id] = future
        return await asyncio.shield(future)

    def made(self, instance_id: str) -> None:
        """The create recorded what it made on the instance: `stop()` finds it there."""
        self._calls.pop(instance_id, None)

    async def settled(self, instance_id: str) -> Any:
        """What a called-off create's engine call made, once it has ended (None when it
        made nothing, failed, or there was no such call)."""
        future = self._calls.get(instance_id)
        if future is None:
            return None
        await asyncio.wait([future])
        self._calls.pop(instance_id, None)
        if future.cancelled() or future.exception() is not None:
            return None
        return future.result()
