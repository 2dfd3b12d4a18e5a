"""How an instance is run: the one small interface every runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..models import Instance, Node
from .logfiles import tail
from .memory import RECYCLE_EXIT


@dataclass
class Reclaimed:
    """An instance a previous start of the service left running, taken back: what started
    it, and whether this version still reads its checkpoint as it was read then."""

    package: str  # the jupyter_deploy version that started it
    readable: bool


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

    def ended(self, instance: Instance) -> str:
        """Why the instance is no longer running, for its event."""
        code = self.exit_code(instance)
        if code == RECYCLE_EXIT:
            return "recycled: a request raised MemoryError, and its heap can't be trusted"
        return f"the instance exited (code {code})"

    async def sweep(self) -> None:  # noqa: B027 - most runtimes leave nothing behind
        """Stop what a previous start of the service left running and nobody adopts."""

    def detach(self, instance: Instance) -> bool:
        """Whether the instance keeps running when the service stops (to be adopted)."""
        return False

    async def reclaim(self, node: Node, instance: Instance, checkpoint_dir: Path
                      ) -> Reclaimed | None:
        """Take back the stored instance if it still runs as this folder's; None if not."""
        return None

    def token(self, instance: Instance) -> str:
        """What a request to the instance must carry (x-instance-token); "" for those that
        listen on loopback only."""
        return ""

    async def close(self) -> None:  # noqa: B027 - most runtimes hold nothing
        """Release what the runtime holds (not the instances)."""

    def logs(self, instance: Instance, tail_bytes: int = 64 * 1024,
             request_id: str | None = None) -> str:
        """The end of the instance's log (across its rotated files), or of one request's lines."""
        if not instance.log_path:
            return ""
        return tail(instance.log_path, tail_bytes, request_id)


class Runtimes(Runtime):
    """The runtimes of a service, each instance served by the one it was created with."""

    def __init__(self, runtimes: dict[str, Runtime], default: str = "process") -> None:
        self.runtimes = runtimes
        self.default = default  # what a new node runs on when it names no runtime
        self.keep = True  # False: a stop of everything, where no instance outlives the service

    def of(self, instance: Instance) -> Runtime:
        return self.runtimes[instance.runtime]

    async def create(self, node: Node, instance: Instance, checkpoint_dir: Path) -> None:
        await self.of(instance).create(node, instance, checkpoint_dir)

    def alive(self, instance: Instance) -> bool:
        return self.of(instance).alive(instance)

    def exit_code(self, instance: Instance) -> int | None:
        return self.of(instance).exit_code(instance)

    async def stop(self, instance: Instance, timeout_s: float) -> None:
        await self.of(instance).stop(instance, timeout_s)

    def detach(self, instance: Instance) -> bool:
        return self.keep and self.of(instance).detach(instance)

    async def reclaim(self, node: Node, instance: Instance, checkpoint_dir: Path
                      ) -> Reclaimed | None:
        return await self.of(instance).reclaim(node, instance, checkpoint_dir)

    def ended(self, instance: Instance) -> str:
        return self.of(instance).ended(instance)

    def token(self, instance: Instance) -> str:
        return self.of(instance).token(instance)

    async def sweep(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.sweep()

    async def close(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.close()

    def logs(self, instance: Instance, tail_bytes: int = 64 * 1024,
             request_id: str | None = None) -> str:
        return self.of(instance).logs(instance, tail_bytes, request_id)
