"""Request capture on a standalone service: the gateway samples a node's requests with their
answers; the control API, the CLI and `%deploy requests` (a DataFrame in a real kernel)
read them back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
from typing import Any

import pytest

from jupyter_deploy.client import ClientError
from jupyter_deploy.gateway.capture import MAX_BODY, Recorder, Writer
from jupyter_deploy.gateway.routing import Routes
from jupyter_deploy.http.messages import Response
from jupyter_deploy.models import Node
from jupyter_deploy.store import Store

from ..conftest import checkpoint_body, until
from ..kernel.test_magics import kernel  # noqa: F401 - a kernel of this module's own
from .test_gateway import post

ADDER = dict(source="total = a + b", inputs="a:float,b:float", outputs="total", a=1.0, b=2.0)


def requests(service, node: str, last: int = 100) -> list[dict[str, Any]]:
    return service.client.requests(node, last)["requests"]


def send_mix(node: dict[str, Any], key: str, count: int = 5) -> list[int]:
    """Alternate good inputs (200) with a wrong type (422)."""
    statuses = []
    for i in range(count):
        value: Any = float(i) if i % 2 == 0 else "not a number"
        statuses.append(post(node["endpoint"], {"input": {"a": value, "b": 1.0}}, key)[0])
    return statuses


@pytest.fixture(scope="module")
def captured(service):
    node, key = service.create_node("captured", checkpoint_body("captured", **ADDER),
                                    capture={"percent": 100})
    yield node, key
    service.client.delete_node("captured")


def test_every_request_is_captured_with_its_answer(captured, service):
    node, key = captured
    assert node["capture"] == {"percent": 100, "limit": 1000}
    assert send_mix(node, key) == [200, 422, 200, 422, 200]
    rows = requests(service, "captured")
    assert [r["status"] for r in rows] == [200, 422, 200, 422, 200]
    assert [r["input"] for r in rows] == [{"a": 0.0, "b": 1.0}, {"a": "not a number", "b": 1.0},
                                          {"a": 2.0, "b": 1.0}, {"a": "not a number", "b": 1.0},
                                          {"a": 4.0, "b": 1.0}]
    assert [r["output"] for r in rows] == [{"total": 1.0}, None, {"total": 3.0}, None,
                                           {"total": 5.0}]
    assert rows[1]["error"]["error"]["field"] == "input.a"
    assert rows[0]["instance"] == node["instances"][0]["id"] and rows[1]["instance"] is None
    assert all(r["latency_ms"] > 0 for r in rows)
    assert rows == sorted(rows, key=lambda r: r["time"])  # newest last
    assert requests(service, "captured", last=2) == rows[-2:]


def test_requests_through_an_alias_are_captured_by_the_node_that_served(captured, service):
    service.client.set_alias("captured-alias", {"nodes": {"captured": 100}, "public": True})
    try:
        status, body, headers = post(
            service.gateway_url + "/v1/aliases/captured-alias:execute",
            {"input": {"a": 7.0, "b": 1.0}})
        assert (status, body) == (200, {"output": {"total": 8.0}})
        row = requests(service, "captured", last=1)[0]
        assert (row["input"], row["instance"], row["request_id"]) == (
            {"a": 7.0, "b": 1.0}, headers["x-instance-id"], headers["x-request-id"])
    finally:
        service.client.delete_alias("captured-alias")


def test_limit_bounds_what_is_kept(service):
    node, key = service.create_node("captured-few", checkpoint_body("captured-few", **ADDER),
                                    capture={"percent": 100, "limit": 3})
    send_mix(node, key, 5)
    assert [r["input"]["a"] for r in requests(service, "captured-few")] == [
        2.0, "not a number", 4.0]
    service.client.update_node("captured-few", {"capture": {"limit": 2}})
    send_mix(node, key, 1)
    assert [r["input"]["a"] for r in requests(service, "captured-few")] == [4.0, 0.0]
    service.client.update_node("captured-few", {"capture": None})
    send_mix(node, key, 1)
    assert len(requests(service, "captured-few")) == 2  # off: nothing new, the rest kept
    service.client.delete_node("captured-few")
    # a node made again under the same name starts with nothing captured
    service.client.create_node({"name": "captured-few", "checkpoint": "captured-few"})
    assert requests(service, "captured-few") == []
    service.client.delete_node("captured-few")


def test_capture_is_off_by_default_and_checked(service):
    node, key = service.create_node("uncaptured", checkpoint_body("uncaptured", **ADDER))
    assert node["capture"] is None
    send_mix(node, key, 2)
    assert requests(service, "uncaptured") == []
    for capture, field in (({"percent": 101}, "capture.percent"), (10, "capture"),
                           ({"percent": 10, "limit": 0}, "capture.limit"),
                           ({"share": 10}, "capture.share")):
        with pytest.raises(ClientError) as info:
            service.client.update_node("uncaptured", {"capture": capture})
        assert (info.value.status, info.value.body["error"]["field"]) == (422, field)
    with pytest.raises(ClientError) as info:
        service.client.requests("uncaptured", last=0)
    assert (info.value.status, info.value.body["error"]["field"]) == (422, "last")
    service.client.delete_node("uncaptured")


def test_large_bodies_are_kept_as_their_size(captured, service):
    node, key = captured
    text = "x" * (1024 * 1024 + 10)
    sent = {"input": {"a": 1.0, "b": 2.0}, "pad": text}
    status, body, _ = post(node["endpoint"], sent, key)
    assert status == 200
    row = requests(service, "captured", last=1)[0]
    assert row["input"] is None and row["output"] == {"total": 3.0}
    assert row["omitted"] == f"not kept, over 1 MB: input ({len(json.dumps(sent))} bytes)"


def test_cli_prints_a_table_or_json_lines(captured, service, tmp_path):
    def deploy(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", *args],
                              env=service.env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    node, key = captured
    post(node["endpoint"], {"input": {"a": 20.0, "b": 22.0}}, key)
    post(node["endpoint"], {"input": {"a": "x", "b": 22.0}}, key)
    table = deploy("requests", "captured", "--last", "2").splitlines()
    assert table[0].split() == ["TIME", "REQUEST", "ID", "INSTANCE", "STATUS", "LATENCY", "MS",
                                "INPUT", "OUTPUT", "OR", "ERROR"]
    assert '200' in table[1] and '{"a": 20.0, "b": 22.0}' in table[1]
    assert table[1].endswith('{"total": 42.0}')
    assert "422" in table[2] and "input.a:" in table[2]
    lines = [json.loads(line) for line in
             deploy("requests", "captured", "--last", "2", "--json").splitlines()]
    assert [(r["status"], r["output"]) for r in lines] == [(200, {"total": 42.0}), (422, None)]


def test_magics_capture_and_return_a_dataframe(kernel, service):  # noqa: F811
    kernel.ok("a, b = 1.0, 2.0")
    kernel.ok("%%deploy pin framed --inputs a:float,b:float --outputs total\ntotal = a + b")
    kernel.ok("%deploy node create framed-node --checkpoint framed --capture 100")
    kernel.ok("for a in (1.0, 2.0, 3.0):\n    %deploy call framed-node a={a} b=10\n"
              "for bad in ('x', 'y'):\n    try:\n        %deploy call framed-node a={bad!r} b=1\n"
              "    except Exception:\n        pass")
    status = kernel.ok("%deploy node status framed-node").stdout
    assert "capture:  100% of the requests, the last 1000 kept" in status
    shown = kernel.ok("df = %deploy requests framed-node --last 100\n"
                      "print(len(df), list(df.columns), df['time'].dtype)\n"
                      "print(df['output.total'].tolist(), df['status'].tolist())").stdout
    assert shown.splitlines() == [
        "5 ['time', 'request_id', 'instance', 'status', 'latency_ms', 'input.a', 'input.b', "
        "'output.total', 'error'] datetime64[ns, UTC]",
        "[11.0, 12.0, 13.0, nan, nan] [200, 200, 200, 422, 422]"]
    errors = kernel.ok("print(df['error'].tolist()[3])").stdout
    assert errors.startswith("input.a: ")
    kernel.ok("%deploy node delete framed-node")


HOLD_S = 2.0  # how long another writer keeps the database locked
STALL_S = 1.0  # a pause of the loop this long means the write ran on it


def test_a_capture_write_that_waits_for_the_database_leaves_the_loop_free(tmp_path):
    """Captured bodies (1 MB here) are written off the gateway's loop (issue 10): while
    another writer holds the database, the loop keeps its pace, and the row lands after."""
    asyncio.run(_write_while_locked(tmp_path))


async def _write_while_locked(tmp_path) -> None:
    store = Store(tmp_path)
    store.save_node(Node("slow", "id", "slow@1", capture={"percent": 100, "limit": 10}))
    routes = Routes()
    route = routes.add_node("slow", "")
    route.capture = {"percent": 100, "limit": 10}
    recorder = Recorder(routes, store, period_s=0.01)
    recorder.start()
    blocker = sqlite3.connect(tmp_path / "deploy.db", isolation_level=None,
                              check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(HOLD_S, blocker.execute, ["ROLLBACK"])
    release.start()
    loop = asyncio.get_running_loop()
    pauses = [0.0]

    async def tick() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            pauses.append(loop.time() - last)
            last = loop.time()

    ticker = asyncio.ensure_future(tick())
    try:
        async def answer() -> Response:
            return Response(200, b'{"output": {"total": 1}}')

        await recorder.watch(route, b"x" * MAX_BODY, answer())
        await until(lambda: not recorder.pending, message="the batch to be taken for writing")
        await asyncio.sleep(HOLD_S)  # the lock is released meanwhile
        assert max(pauses) < STALL_S, f"the loop stopped for {max(pauses):.2f} s"
        await until(lambda: store.requests("slow", 10), timeout=10,
                    message="the captured request to be written")
        [row] = store.requests("slow", 10)
        assert (row[3], row[5], row[6]) == (200, b"x" * MAX_BODY, MAX_BODY)
    finally:
        ticker.cancel()
        release.join()
        blocker.close()
        await recorder.stop()
        store.close()


def test_a_batch_on_its_way_does_not_land_in_a_node_made_again(tmp_path):
    """A node deleted and made again under its name while a batch of its old requests was
    being written starts with nothing captured."""
    store = Store(tmp_path)
    node = Node("again", "id", "again@1")
    store.save_node(node)

    async def write() -> None:
        writer = Writer(store)
        old = ("again", node.created - 1, "old", None, 200, 1.0, b"{}", 2, b"{}", 2)
        new = ("again", node.created + 1, "new", None, 200, 1.0, b"{}", 2, b"{}", 2)
        gone = ("deleted", node.created + 1, "gone", None, 200, 1.0, b"{}", 2, b"{}", 2)
        await writer.write([old, new, gone], {})
        await writer.close()

    asyncio.run(write())
    assert [row[1] for row in store.requests("again", 10)] == ["new"]
    assert store.requests("deleted", 10) == []
    store.close()
