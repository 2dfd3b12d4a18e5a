"""Adaptive batching (issue 18), on the session's standalone service over real sockets: one
run of a batched cell serves many callers, each caller gets its own rows, and one caller's bad
input, a cell that raises or a deadline that passed stays that caller's (or that batch's)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from jupyter_deploy.client import ClientError

from ..conftest import checkpoint_body, wait_for
from .test_gateway import post

# y = each row times 2 plus its row id; a row whose first value is 99 makes the run slow (the
# instance is then busy while other callers arrive), a negative one makes the cell raise.
CELL = """\
import time
if (x[:, 0] == 99).any():
    time.sleep(slow_s)
if (x < 0).any():
    raise ValueError("negative rows")
seen.extend(ids)
y = x * 2 + np.asarray(ids, dtype="float64")[:, None]
count = [len(seen)] * len(ids)
"""


def batched(name: str, slow_s: float = 1.5) -> dict[str, Any]:
    """A checkpoint pinned with --batch: x (rows of 4) and ids (one per row) stack."""
    import numpy as np

    body = checkpoint_body(name, CELL, "x:ndarray[float64,(-1,4)],ids:list[int]",
                           "y:ndarray[float64,(-1,4)],count:list[int]",
                           state={"np": np, "seen": [], "slow_s": slow_s},
                           x=np.ones((1, 4)), ids=[0])
    return {**body, "batch": True}


def instance_url(service: Any, node: str) -> str:
    instance = service.client.node(node)["instances"][0]
    return f"http://{instance['host']}:{instance['port']}"


def instance_metrics(service: Any, node: str) -> str:
    with urllib.request.urlopen(instance_url(service, node) + "/metrics", timeout=10) as answer:
        return answer.read().decode()


def batch_sizes(metrics: str) -> tuple[int, float]:
    """(runs, callers) from the instance's batch-size histogram."""
    runs = callers = 0.0
    for line in metrics.splitlines():
        if line.startswith("instance_batch_size_count"):
            runs = float(line.split()[1])
        elif line.startswith("instance_batch_size_sum"):
            callers = float(line.split()[1])
    return int(runs), callers


def busy(service: Any, node: str) -> bool:
    """Whether the instance is running its cell now (its readiness says for how long)."""
    try:
        with urllib.request.urlopen(instance_url(service, node) + "/readyz", timeout=5) as answer:
            return json.loads(answer.read())["busy_s"] > 0
    except OSError:
        return False


async def _exchange(address: tuple[str, int], requests: list[bytes]
                    ) -> list[tuple[int, dict[str, Any]]]:
    """Send each request on one keep-alive connection in turn; (status, JSON) of each."""
    reader, writer = await asyncio.open_connection(*address)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answers.append((status, json.loads(await reader.readexactly(length))))
    finally:
        writer.close()
    return answers


def _request(endpoint: str, key: str, payload: dict[str, Any], **headers: str) -> bytes:
    parts = urllib.parse.urlsplit(endpoint)
    body = json.dumps(payload).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _concurrently(endpoint: str, key: str, batches: list[list[dict[str, Any]]]
                  ) -> list[list[tuple[int, dict[str, Any]]]]:
    """Each list of payloads in turn on its own connection, all connections at once."""
    parts = urllib.parse.urlsplit(endpoint)
    address = (parts.hostname or "", parts.port or 80)

    async def run() -> list[list[tuple[int, dict[str, Any]]]]:
        return list(await asyncio.gather(*(
            _exchange(address, [_request(endpoint, key, p) for p in payloads])
            for payloads in batches)))

    return asyncio.run(run())


def row(i: int) -> dict[str, Any]:
    return {"input": {"x": [[i, i + 0.5, 1, i * 2]], "ids": [i]}}


@pytest.fixture(scope="module")
def node(service):
    node, key = service.create_node("batcher", batched("batcher"),
                                    batch={"max_size": 32, "max_wait_ms": 5})
    yield node, key
    service.client.delete_node("batcher")


def test_node_shows_its_batch_setting(node, service):
    assert service.client.node("batcher")["batch"] == {"max_size": 32, "max_wait_ms": 5}


def test_each_of_1000_concurrent_callers_gets_its_own_rows(node, service):
    shown, key = node
    before = batch_sizes(instance_metrics(service, "batcher"))
    clients = 32
    payloads = [[row(c * 1000 + k) for k in range(1000 // clients + 1)
                 if c * (1000 // clients + 1) + k < 1000] for c in range(clients)]
    answers = _concurrently(shown["endpoint"], key, payloads)
    assert sum(map(len, answers)) == 1000
    for sent, got in zip(payloads, answers, strict=True):
        for payload, (status, body) in zip(sent, got, strict=True):
            assert status == 200, body
            i = payload["input"]["ids"][0]
            expected = [[v * 2 + i for v in payload["input"]["x"][0]]]
            assert body["output"]["y"] == expected
    runs, callers = batch_sizes(instance_metrics(service, "batcher"))
    runs, callers = runs - before[0], callers - before[1]
    assert callers == 1000
    assert runs < 1000 / 2, f"{runs} runs for 1000 callers: they were not batched"


def test_a_lone_request_runs_at_once(service):
    """c=1: an idle instance does not wait for more callers, however long it may wait."""
    shown, key = service.create_node("lonely", batched("lonely"),
                                     batch={"max_size": 32, "max_wait_ms": 1000})
    try:
        post(shown["endpoint"], row(1), key)  # warm
        started = time.perf_counter()
        status, body, _ = post(shown["endpoint"], row(7), key)
        elapsed = time.perf_counter() - started
        assert status == 200 and body["output"]["y"] == [[21, 22, 9, 35]]
        assert elapsed < 0.9, f"a lone request took {elapsed:.3f} s: it waited for a batch"
    finally:
        service.client.delete_node("lonely")


def _while_busy(service: Any, name: str, endpoint: str, key: str,
                others: list[dict[str, Any]]) -> tuple[tuple[int, dict[str, Any]],
                                                       list[tuple[int, dict[str, Any]]]]:
    """Start a slow run, then send `others` while it runs; (the slow answer, theirs)."""
    parts = urllib.parse.urlsplit(endpoint)
    address = (parts.hostname or "", parts.port or 80)
    slow = {"input": {"x": [[99, 0, 0, 0]], "ids": [-1]}}

    async def run() -> tuple[Any, Any]:
        first = asyncio.ensure_future(_exchange(address, [_request(endpoint, key, slow)]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await asyncio.to_thread(busy, service, name):
            assert loop.time() < deadline, "the slow run never started"
        rest = await asyncio.gather(*(_exchange(address, [_request(endpoint, key, p)])
                                      for p in others))
        return (await first)[0], [answers[0] for answers in rest]

    return asyncio.run(run())


def test_one_bad_input_in_a_batch_fails_only_its_caller(node, service):
    shown, key = node
    bad = {"input": {"x": [[1, 2, 3, 4], [5, 6, 7, 8]], "ids": [1]}}  # 2 rows, 1 id
    others = [row(i) for i in range(100, 106)]
    (status, _), answers = _while_busy(service, "batcher", shown["endpoint"], key,
                                       others[:3] + [bad] + others[3:])
    assert status == 200
    statuses = [s for s, _ in answers]
    assert statuses == [200, 200, 200, 422, 200, 200, 200], answers
    assert answers[3][1]["error"]["field"] == "input.ids"
    assert "2 rows" in answers[3][1]["error"]["message"] or "1 rows" in \
        answers[3][1]["error"]["message"]
    for payload, (_, body) in zip(others, answers[:3] + answers[4:], strict=True):
        i = payload["input"]["ids"][0]
        assert body["output"]["y"] == [[v * 2 + i for v in payload["input"]["x"][0]]]


def test_a_batch_whose_cell_raises_answers_each_caller_with_the_error(node, service):
    shown, key = node
    poisoned = {"input": {"x": [[-1, 0, 0, 0]], "ids": [5]}}
    others = [row(i) for i in range(200, 204)]
    (status, _), answers = _while_busy(service, "batcher", shown["endpoint"], key,
                                       others + [poisoned])
    assert status == 200
    for status, body in answers:  # they all waited for the same run
        assert status == 500, body
        assert body["error_name"] == "ValueError" and body["error_message"] == "negative rows"
        assert any("raise ValueError" in line for line in body["traceback"])
    status, body, _ = post(shown["endpoint"], row(300), key)  # the next batch is fine
    assert status == 200 and body["output"]["y"][0][0] == 900


def test_a_caller_whose_deadline_passed_is_dropped_before_the_run(node, service):
    """Sent to the instance as the gateway sends it: the slow run outlasts the others' time
    left, so the cell never sees their rows."""
    url = instance_url(service, "batcher")
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "", parts.port or 80)
    batch = {"x-batch": "32 5"}
    slow = {"input": {"x": [[99, 0, 0, 0]], "ids": [-2]}}

    def request(payload: dict[str, Any], deadline_ms: int) -> bytes:
        return _request(url + "/execute", "unused", payload, **batch,
                        **{"x-deadline-ms": str(deadline_ms)})

    async def run() -> tuple[Any, Any, Any]:
        first = asyncio.ensure_future(_exchange(address, [request(slow, 10_000)]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await asyncio.to_thread(busy, service, "batcher"):
            assert loop.time() < deadline, "the slow run never started"
        late = await asyncio.gather(*(_exchange(address, [request(row(400 + i), 100)])
                                      for i in range(3)))
        after = await _exchange(address, [request(row(500), 10_000)])
        return (await first)[0], [answers[0] for answers in late], after[0]

    _, body, _ = post(node[0]["endpoint"], row(600), node[1])
    before = body["output"]["count"][0]
    slow_answer, late, after = asyncio.run(run())
    assert slow_answer[0] == 200
    assert [s for s, _ in late] == [504, 504, 504], late
    assert all(b["error"]["code"] == "timeout" for _, b in late)
    assert after[0] == 200
    # only the slow row and the one after it ran: none of the dropped callers' rows
    assert after[1]["output"]["count"] == [before + 2]


def test_batch_setting_refusals_name_their_field(service):
    plain = service.client.add_checkpoint(checkpoint_body("plainrows", "y = x", "x:list", "y",
                                                          x=[1]))
    pinned = service.client.add_checkpoint(batched("batchrows"))
    cases = [
        ({"checkpoint": plain["name"], "batch": {}}, "batch"),
        ({"checkpoint": pinned["name"], "batch": {"max_size": 0}}, "batch.max_size"),
        ({"checkpoint": pinned["name"], "batch": {"max_size": "8"}}, "batch.max_size"),
        ({"checkpoint": pinned["name"], "batch": {"max_wait_ms": -1}}, "batch.max_wait_ms"),
        ({"checkpoint": pinned["name"], "batch": {"size": 8}}, "batch.size"),
        ({"checkpoint": pinned["name"], "batch": 8}, "batch"),
    ]
    for spec, field in cases:
        with pytest.raises(ClientError) as refused:
            service.client.create_node({"name": "refused", "min": 0, **spec})
        assert (refused.value.status, refused.value.body["error"]["field"]) == (422, field), \
            (spec, refused.value.body)
    assert "refused" not in {n["name"] for n in service.client.nodes()}
    with pytest.raises(ClientError) as refused:
        service.client.create_node({"name": "refused", "checkpoint": plain["name"], "batch": {}})
    assert "plainrows@" in refused.value.message and "--batch" in refused.value.message


def test_batching_is_turned_off_and_on_by_an_update(node, service):
    changed = service.client.update_node("batcher", {"batch": {"max_wait_ms": 2}})
    assert changed["batch"] == {"max_size": 32, "max_wait_ms": 2}
    assert service.client.update_node("batcher", {"batch": None})["batch"] is None
    shown, key = node
    status, body, _ = post(shown["endpoint"], row(3), key)
    assert status == 200 and body["output"]["y"] == [[9, 10, 5, 15]]
    changed = service.client.update_node("batcher", {"batch": {"max_wait_ms": 5}})
    assert changed["batch"] == {"max_size": 32, "max_wait_ms": 5}


def test_open_inference_protocol_requests_batch_too(node, service):
    shown, key = node
    url = service.gateway_url + "/v2/models/batcher/infer"
    before = batch_sizes(instance_metrics(service, "batcher"))

    def infer(i: int) -> dict[str, Any]:
        return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4],
                            "data": row(i)["input"]["x"][0]},
                           {"name": "ids", "datatype": "INT64", "shape": [1], "data": [i]}]}

    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "", parts.port or 80)

    async def run() -> list[list[tuple[int, dict[str, Any]]]]:
        return list(await asyncio.gather(*(
            _exchange(address, [_request(url, key, infer(c * 10 + k)) for k in range(10)])
            for c in range(16))))

    answers = asyncio.run(run())
    for c, got in enumerate(answers):
        for k, (status, body) in enumerate(got):
            assert status == 200, body
            i = c * 10 + k
            y = next(o for o in body["outputs"] if o["name"] == "y")
            assert y["data"] == [v * 2 + i for v in row(i)["input"]["x"][0]]
    runs, callers = batch_sizes(instance_metrics(service, "batcher"))
    assert callers - before[1] == 160 and runs - before[0] < 160


def test_capture_and_the_replay_check_apply_to_each_caller(service):
    """A strict node passes its replay check (run unbatched, on the example), and every
    caller of a batch is captured with its own input and its own rows."""
    import numpy as np

    cell = CELL.replace("seen.extend(ids)\n", "").replace("len(seen)", "0")
    body = checkpoint_body("batchcap", cell, "x:ndarray[float64,(-1,4)],ids:list[int]",
                           "y:ndarray[float64,(-1,4)],count:list[int]",
                           state={"np": np, "slow_s": 0.5}, x=np.ones((1, 4)), ids=[0])
    shown, key = service.create_node("batchcap", {**body, "batch": True}, strict=True,
                                     capture={"percent": 100},
                                     batch={"max_size": 32, "max_wait_ms": 5})
    try:
        wait_for(lambda: (service.client.node("batchcap").get("replay") or {}).get("status")
                 == "passed", timeout=20, message="the replay check to pass")
        others = [row(i) for i in range(700, 708)]
        (status, _), answers = _while_busy(service, "batchcap", shown["endpoint"], key, others)
        assert status == 200 and all(s == 200 for s, _ in answers)
        captured = {r["input"]["ids"][0]: r for r in
                    service.client.requests("batchcap", 100)["requests"]}
        for payload in others:
            i = payload["input"]["ids"][0]
            assert captured[i]["status"] == 200
            assert captured[i]["output"]["y"] == [[v * 2 + i for v in payload["input"]["x"][0]]]
        runs, callers = batch_sizes(instance_metrics(service, "batchcap"))
        assert callers == 9 and runs < callers  # the replay check ran unbatched, uncounted
    finally:
        service.client.delete_node("batchcap")


def test_shadow_traffic_to_a_batching_node_is_compared_per_caller(node, service):
    """The alias's primary runs each request alone; its shadow, the batching node, runs the
    mirrored copies in batches: each copy's rows are compared with its own primary answer."""
    import numpy as np

    cell = "y = x * 2 + np.asarray(ids, dtype='float64')[:, None]\ncount = [0] * len(ids)"
    primary = checkpoint_body("unbatchedtwin", cell, "x:ndarray[float64,(-1,4)],ids:list[int]",
                              "y:ndarray[float64,(-1,4)],count:list[int]", state={"np": np},
                              x=np.ones((1, 4)), ids=[0])
    keys = {"unbatchedtwin": service.create_node("unbatchedtwin", primary)[1]}
    shadowed = checkpoint_body("batchedtwin", cell, "x:ndarray[float64,(-1,4)],ids:list[int]",
                               "y:ndarray[float64,(-1,4)],count:list[int]", state={"np": np},
                               x=np.ones((1, 4)), ids=[0])
    keys["batchedtwin"] = service.create_node("batchedtwin", {**shadowed, "batch": True},
                                              batch={"max_size": 32, "max_wait_ms": 5})[1]
    try:
        alias = service.client.set_alias("twins", {
            "nodes": {"unbatchedtwin": 100}, "shadow": {"node": "batchedtwin", "percent": 100}})
        url = service.gateway_url + "/v1/aliases/twins:execute"
        for name, key in keys.items():  # first runs are slow: warm both
            assert post(service.gateway_url + f"/v1/nodes/{name}:execute", row(1), key)[0] == 200
        before = batch_sizes(instance_metrics(service, "batchedtwin"))
        payloads = [[row(c * 10 + k) for k in range(10)] for c in range(16)]
        answers = _concurrently(url, alias["key"], payloads)
        statuses = [status for got in answers for status, _ in got]
        assert statuses == [200] * 160, statuses
        record = wait_for(lambda: (found := service.client.request(
            "GET", "/aliases/twins/shadow"))["requests"] >= 160 and found,
            message="every mirrored request to be recorded")
        # a copy the shadow node refused under load (429) ran no cell: an error, not compared
        assert record["different_output"] == 0, record["recent"]
        assert record["same_output"] == 160 - record["errors"] > 0, record["recent"]
        runs, callers = batch_sizes(instance_metrics(service, "batchedtwin"))
        assert callers - before[1] == record["same_output"] > runs - before[0]
    finally:
        service.client.delete_alias("twins")
        service.client.delete_node("unbatchedtwin")
        service.client.delete_node("batchedtwin")
