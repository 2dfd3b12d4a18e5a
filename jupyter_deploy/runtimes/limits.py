"""Instance configurations (CPU, memory, GPUs) and the limits an instance runs under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import Node

REGISTRY_PASSWORD = "registry:password"  # its name among the node's stored secrets

DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
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
    """The node's configuration, with its own memory and disk over the configuration's."""
    config = configs.get(node.config, {}) if node.config else {}
    return Limits(cpus=float(config.get("cpus", 0)),
                  memory_mb=node.memory_mb or int(config.get("memory_mb", 0)),
                  gpus=int(config.get("gpus", 0)), disk_mb=node.disk_mb)
