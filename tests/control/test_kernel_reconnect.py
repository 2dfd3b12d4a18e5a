"""A kernel opened before a restart of the deploy service and of the Jupyter server pins,
creates and calls after them, without `%reload_ext` (issue 13)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from jupyter_deploy.client import ClientError, DeployClient

from ..kernel.test_magics import Kernel
from .servers import NotebookServer, environment, jupyter_deploy, stop_all, stop_service

PIN = ("%%deploy pin {name} --inputs a:float,b:float --outputs total\n"
       "total = (a + b) * scale")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_all()
    stop_service(tmp_path / "state", environment(tmp_path))


def test_a_kernel_outlives_a_restart_of_the_service_and_the_server(root):
    port = free_port()  # the server comes back on its port, with a new token
    server = NotebookServer(root, root / "state", port=port)
    server.wait_ready()
    manager, client = start_new_kernel(kernel_name="python3", env=server.kernel_env,
                                       cwd=str(root))
    try:
        kernel = Kernel(client)
        kernel.ok("%load_ext jupyter_deploy\nscale = 2.0\na, b = 1.0, 2.0")
        kernel.ok(PIN.format(name="adder"))
        kernel.ok("%deploy node create adder-node --checkpoint adder")
        assert kernel.ok("%deploy call adder-node a=1 b=2").value == "{'total': 6.0}"

        server.stop()
        done = jupyter_deploy("stop", f"--state-dir={root / 'state'}", env=server.env)
        assert done.returncode == 0, done.stderr
        again = NotebookServer(root, root / "state", name="again", port=port)
        again.wait_ready()  # a new service, on new ports, with a new token

        kernel.ok(PIN.format(name="later"))
        kernel.ok("%deploy node create later-node --checkpoint later")
        assert kernel.ok("%deploy call later-node a=2 b=2").value == "{'total': 8.0}"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_refused_token_says_why(root):
    """Jupyter's own words for a token it does not know ('_xsrf' argument missing, Forbidden)
    stay, with the reason beside them."""
    server = NotebookServer(root, root / "state")
    server.wait_ready()
    stale = DeployClient(server.api, "a-token-from-before-a-restart")
    with pytest.raises(ClientError) as refused:
        stale.add_checkpoint({"name": "x"})
    assert refused.value.status == 403
    assert "'_xsrf' argument missing from POST" in refused.value.message
    assert "did not accept this client's token" in refused.value.message
    assert "restarted with a new token" in refused.value.message
