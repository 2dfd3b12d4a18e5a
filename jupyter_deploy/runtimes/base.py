"""How an instance is run: the one small interface every runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from ..logfiles import tail
from ..models import Instance, Node


class Runtime(ABC):
    """Creates, stops and inspects instances. Methods never block the event loop."""

    name = ""

    @abstractmethod
    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        """Start the instance's process or container; fill in its pid/port/log_path."""

    @abstractmethod
    def alive(self, instance: Instance) -> bool:
        """Whether the process or container is still running."""

    @abstractmethod
    def exit_code(self, instance: Instance) -> int | None:
        """How it ended, once it has."""

    @abstractmethod
    async def stop(self, instance: Instance, timeout_s: float) -> None:
        """Ask it to stop; force it after `timeout_s`; release everything it held."""

    def logs(self, instance: Instance, tail_bytes: int = 64 * 1024,
             request_id: str | None = None) -> str:
        """The end of the instance's log (across its rotated files), or of one request's lines."""
        if not instance.log_path:
            return ""
        return tail(instance.log_path, tail_bytes, request_id)
