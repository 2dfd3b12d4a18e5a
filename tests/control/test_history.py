"""A node's metric history, kept by the service: what the panel's charts draw (issue 17)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from ..conftest import until
from .test_api import call, error_of, healthy_node


def _execute(url: str, key: str, body: object) -> int:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_history_counts_answers_by_class_including_refused_input(jp_fetch, deploy):
    created = await healthy_node(jp_fetch, deploy)
    url = f"{deploy.gateway_url}/v1/nodes/adder:execute"
    codes = [await asyncio.to_thread(_execute, url, created["key"], body) for body in (
        {"input": {"a": 1, "b": 2}}, {"input": {"a": 3, "b": 4}}, {"input": {"a": "x", "b": 1}})]
    assert codes == [200, 200, 422]

    async def last() -> dict:
        samples = (await call(jp_fetch, "nodes", "adder", "history", params={"range": 60})
                   )["samples"]
        return samples[-1] if samples else {"requests": 0}

    latest: dict = {}

    async def counted() -> bool:
        latest.update(await last())
        return latest["requests"] >= 3

    await until(counted, timeout=20, interval=0.5, message="the history to hold the three requests")
    assert (latest["ok"], latest["client_errors"], latest["server_errors"]) == (2, 1, 0)
    assert latest["buckets"][-1] == latest["duration_count"] == 3
    assert latest["instances"] == 1 and latest["capacity"] >= 1


async def test_history_refuses_a_bad_range_and_an_unknown_node(jp_fetch, deploy):
    await healthy_node(jp_fetch, deploy)
    for value in ("0", "86401", "x"):
        code, body = await error_of(jp_fetch, "nodes", "adder", "history",
                                    params={"range": value})
        assert code == 422 and body["error"]["field"] == "range", value
    code, body = await error_of(jp_fetch, "nodes", "nope", "history")
    assert code == 404 and body["error"]["field"] == "node"
