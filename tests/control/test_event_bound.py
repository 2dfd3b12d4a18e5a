"""`DeployApp.events_kept` bounds the events kept per node, checkpoint and alias."""

from __future__ import annotations

import pytest

from ..conftest import checkpoint_body
from .test_api import ADDER, call


@pytest.fixture
def jp_server_config(jp_server_config):
    return {**jp_server_config,
            "DeployApp": {**jp_server_config["DeployApp"], "events_kept": 3}}


async def test_events_kept_is_a_setting(jp_fetch, deploy):
    for scale in range(5):
        body = checkpoint_body("adder", **{**ADDER, "state": {"scale": float(scale)}})
        await call(jp_fetch, "checkpoints", method="POST", body=body)
    events = (await call(jp_fetch, "events", params={"checkpoint": "adder"}))["events"]
    assert [e["message"] for e in events] == [f"checkpoint adder@{v} pinned" for v in (3, 4, 5)]
