"""One real JupyterHub for the hub tests (it takes seconds to start, each server more)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .hub import PROXY, Hub


@pytest.fixture(scope="package")
def hub() -> Iterator[Hub]:
    pytest.importorskip("jupyterhub", reason="make install brings jupyterhub")
    if not PROXY.exists():
        pytest.skip(f"no configurable-http-proxy at {PROXY}: `make hub` (part of `make test`) brings it")
    root = Path(tempfile.mkdtemp(prefix="deploy-hub-"))
    started = Hub(root)
    try:
        started.start()
        yield started
    finally:
        started.stop()
        shutil.rmtree(root, ignore_errors=True)
