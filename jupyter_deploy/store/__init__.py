"""The SQLite store of the deploy service, and the checkpoint folders beside it."""

from .sqlite import Store, default_state_dir

__all__ = ["Store", "default_state_dir"]
