"""The deploy service: checkpoints, nodes and aliases over the store, the supervisor and the
gateway. No jupyter_server import: `jupyter deploy serve` and the extension host it alike."""

from .deploy import DeployService

__all__ = ["DeployService"]
