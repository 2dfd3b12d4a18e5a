"""`DeployApp.gateway_limits` reaches the gateway: what one connection may cost is a setting."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def jp_server_config(jp_server_config):
    deploy_app = {**jp_server_config["DeployApp"], "gateway_limits": {"max_head": 2048}}
    return {**jp_server_config, "DeployApp": deploy_app}


async def test_a_smaller_head_limit_is_applied(deploy):
    async def head_status(padding: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", deploy.gateway_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Pad: " + b"p" * padding
                     + b"\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return line

    assert (await head_status(100)).startswith(b"HTTP/1.1 200")
    assert (await head_status(4096)).startswith(b"HTTP/1.1 431")  # the default allows 64 KB
