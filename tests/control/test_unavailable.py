"""When the deploy service cannot start, the server runs on and the control API says why."""

from __future__ import annotations

import json
import socket

import pytest
from tornado.httpclient import HTTPClientError


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def jp_server_config(tmp_path, busy_port):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_deploy": True,
                                              "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "DeployApp": {"state_dir": str(tmp_path / "state"), "gateway_port": busy_port,
                      "gateway_grpc_port": 0},
    }


async def test_control_api_explains_why_the_service_is_down(jp_fetch, deploy, busy_port):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("deploy", "api", "nodes")
    assert info.value.code == 503
    message = json.loads(info.value.response.body)["error"]["message"]
    assert message.startswith("the deploy service is not running: the gateway cannot listen on "
                              f"127.0.0.1:{busy_port}")
