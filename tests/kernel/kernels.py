"""A real IPython kernel with the magics loaded, against a standalone service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

from .test_magics import Kernel


@contextmanager
def running_kernel(service: Any, cwd: Path, **env: str) -> Iterator[Kernel]:
    """A kernel working in `cwd` (the notebook's folder), shut down afterwards; `env` is
    added to its environment, and a variable given as "" is left out."""
    environment = {k: v for k, v in {**service.kernel_env, **env}.items() if v != ""}
    manager, client = start_new_kernel(kernel_name="python3", env=environment, cwd=str(cwd))
    try:
        running = Kernel(client)
        running.ok("%load_ext jupyter_deploy")
        yield running
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
