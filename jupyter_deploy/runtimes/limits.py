"""Instance configurations (CPU, memory, GPUs) and the limits an instance runs under."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..models import InvalidInput, Node

REGISTRY_PASSWORD = "registry:password"  # its name among the node's stored secrets

DEFAULT = "default"  # the configuration of nodes that name none
DEFAULT_MEMORY_MB = 2048  # every instance has a memory limit unless told otherwise (issue 12)

DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    DEFAULT: {"cpus": 0, "memory_mb": DEFAULT_MEMORY_MB, "gpus": 0},
    "small": {"cpus": 1, "memory_mb": 1024, "gpus": 0},
    "medium": {"cpus": 2, "memory_mb": 4096, "gpus": 0},
    "large": {"cpus": 4, "memory_mb": 16384, "gpus": 0},
    "gpu": {"cpus": 4, "memory_mb": 16384, "gpus": 1},
}


@dataclass(frozen=True)
class Limits:
    """What an instance may use; 0 means no limit."""

    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0
    disk_mb: int = 0


def check_configs(configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The instance configurations of the service's config, each checked."""
    for name, config in configs.items():
        if not isinstance(config, dict) or set(config) - {"cpus", "memory_mb", "gpus"}:
            raise ValueError(f"instance configuration {name!r}: an object of cpus, memory_mb "
                             "and gpus")
        for key, value in config.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"instance configuration {name!r}: {key} must be a number >= 0")
    return {name: dict(config) for name, config in configs.items()}


def limits(node: Node, configs: dict[str, dict[str, Any]]) -> Limits:
    """The node's configuration (else the default one), with its own memory and disk over
    the configuration's."""
    config = configs.get(node.config or DEFAULT, {})
    return Limits(cpus=float(config.get("cpus", 0)),
                  memory_mb=node.memory_mb or int(config.get("memory_mb", 0)),
                  gpus=int(config.get("gpus", 0)), disk_mb=node.disk_mb)


@dataclass(frozen=True)
class Capacity:
    """What one instance could get at most where it runs: an engine's or a host's CPUs and
    memory, and where the figures come from."""

    cpus: float
    memory_mb: int
    where: str  # "the Docker engine", "this host"
    source: str  # how the figures were read, for the message


def host_capacity() -> Capacity:
    """This host's CPUs and physical memory (what the process runtime's instances share)."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return Capacity(float(os.cpu_count() or 1), memory >> 20, "this host",
                    "os.cpu_count() and the physical memory")


def engine_capacity(info: dict[str, Any]) -> Capacity:
    """A Docker engine's CPUs and memory, from `docker info`."""
    return Capacity(float(info.get("NCPU") or 0), int(info.get("MemTotal") or 0) >> 20,
                    "the Docker engine", "docker info: NCPU, MemTotal")


def check_capacity(node: Node, wanted: Limits, capacity: Capacity) -> None:
    """Refuse limits no instance could ever get: it would be created, then crash-loop."""
    if capacity.cpus and wanted.cpus > capacity.cpus:
        raise InvalidInput(f"config {node.config} asks for {wanted.cpus:g} CPUs; "
                           f"{capacity.where} has {capacity.cpus:g} CPU(s) ({capacity.source})",
                           field="config")
    if capacity.memory_mb and wanted.memory_mb > capacity.memory_mb:
        asked = f"memory_mb is {node.memory_mb} MB" if node.memory_mb else \
            f"config {node.config or DEFAULT} asks for {wanted.memory_mb} MB of memory"
        raise InvalidInput(f"{asked}; {capacity.where} has {capacity.memory_mb} MB "
                           f"({capacity.source})", field="memory_mb" if node.memory_mb else "config")
