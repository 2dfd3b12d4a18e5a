"""A real IPython kernel with the magics loaded, against a standalone service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

from .test_magics import Kernel


@contextmanager
def running_kernel(service: Any, cwd: Path) -> Iterator[Kernel]:
    """A kernel working in `cwd` (the notebook's folder), shut down afterwards."""
    manager, client = start_new_kernel(kernel_name="python3", env=service.kernel_env,
                                       cwd=str(cwd))
    try:
        running = Kernel(client)
        running.ok("%load_ext jupyter_deploy")
        yield running
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
