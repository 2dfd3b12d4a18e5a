"""Many users' servers on one machine (issue 19): a second service that would collide on the
gateway's port says so where the user looks, and a server stopped as a hub stops it leaves no
discovery file behind."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.client import ClientError, DeployClient, discovery

from ..conftest import wait_for
from .servers import NotebookServer, environment, stop_all, stop_service


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """Two users' folders; the services the servers started are stopped afterwards."""
    for user in ("alice", "bob"):
        (tmp_path / user).mkdir()
    yield tmp_path
    stop_all()
    for user in ("alice", "bob"):
        if discovery.read_service(tmp_path / user / "state") is not None:
            stop_service(tmp_path / user / "state", environment(tmp_path / user))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_second_service_on_the_same_port_says_to_use_the_shared_one(root):
    port = free_port()
    alice = NotebookServer(root / "alice", root / "alice" / "state", "alice", gateway_port=port)
    alice.wait_ready()
    bob = NotebookServer(root / "bob", root / "bob" / "state", "bob", gateway_port=port)

    def answered() -> tuple[int, Any] | None:
        try:
            return bob.call("GET", "/nodes", timeout=90)
        except OSError:  # bob's server is not listening yet
            return None
    status, body = wait_for(answered, timeout=90, interval=0.1, message="bob's server to answer")
    assert status == 503, body
    message = body["error"]["message"]  # what the panel shows
    assert f"the gateway cannot listen on 127.0.0.1:{port}: Address already in use" in message
    assert "c.DeployApp.service_url" in message and "JUPYTER_DEPLOY_SERVICE_URL" in message
    with pytest.raises(ClientError) as info:  # what the magics and the CLI show
        DeployClient(bob.api, bob.token, 90).nodes()
    assert info.value.status == 503 and "c.DeployApp.service_url" in info.value.message
    assert alice.call("GET", "/nodes")[0] == 200  # the first one serves on


def test_a_server_stopped_by_sigint_without_a_terminal_withdraws_its_announcement(root):
    # A configured service that does not answer: this server starts none of its own.
    server = NotebookServer(root / "alice", root / "alice" / "state", "alice",
                            service_url="http://127.0.0.1:9/deploy/api")
    announcement = root / "alice" / "runtime" / f"jupyter_deploy-{server.process.pid}.json"
    wait_for(announcement.exists, timeout=30, message="the server's announcement")
    server.stop(signal.SIGINT)  # as a hub stops it: stdin is not a terminal
    assert server.process.returncode is not None
    assert not announcement.exists()
