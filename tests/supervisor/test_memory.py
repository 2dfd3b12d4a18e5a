"""Memory limits by default (issue 12): a process instance over the default limit is killed
within 2 s and replaced while the service keeps serving; one that raised MemoryError answers,
then is recycled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Service, alive, checkpoint_body, standalone, wait_for
from ..gateway.test_gateway import post

LIMIT_MB = 300
# Grows its resident set 10 MB at a time, noting each step (time, VmRSS in MB) in `trace`.
HOG = """import time
chunks = []
for _ in range(steps):
    chunks.append(b"x" * (10 << 20))
    rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) >> 10
    with open(trace, "a") as out:
        out.write(f"{time.time()} {rss}\\n")
    time.sleep(0.01)
grown = len(chunks)
"""
GREEDY = """if huge:
    blob = bytearray(1 << 46)
done = not huge
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose default instance memory limit is 300 MB."""
    with standalone(tmp_path_factory.mktemp("memory"),
                    f"--DeployApp.default_memory_mb={LIMIT_MB}") as running:
        yield running


def instances(service: Service, node: str) -> list[dict[str, Any]]:
    return service.client.request("GET", f"/nodes/{node}/instances")["instances"]


def test_a_hog_is_killed_within_2_s_of_its_limit_and_replaced(small: Service,
                                                              tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    hog, hog_key = small.create_node(
        "hog", checkpoint_body("hog", HOG, "steps:int,trace:str", "grown", steps=1,
                               trace=str(tmp_path / "pin")), min=1)
    adder, adder_key = small.create_node(
        "adder", checkpoint_body("adder", "total = a + b", "a:float,b:float", "total",
                                 a=1.0, b=2.0))
    [first] = instances(small, "hog")
    status, body, _ = post(hog["endpoint"], {"input": {"steps": 100, "trace": str(trace)}},
                           hog_key)
    died = time.time()
    wait_for(lambda: not alive(first["pid"]), timeout=5, message="the hog to be killed")
    assert status >= 500, body
    steps = [line.split() for line in trace.read_text().splitlines()]
    crossed = next(float(t) for t, rss in steps if int(rss) >= LIMIT_MB * 0.9)
    assert died - crossed < 2.0, steps  # the last step noted was within reach of the limit
    assert max(int(rss) for _, rss in steps) < LIMIT_MB + 20, steps  # it never got far past
    events = wait_for(lambda: [e for e in small.client.events("hog")
                               if "memory limit" in (e.get("message") or "")],
                      timeout=10, message="an event naming the memory limit")
    assert f"memory limit of {LIMIT_MB} MB (peak " in events[0]["message"], events
    assert post(adder["endpoint"], {"input": {"a": 1, "b": 2}}, adder_key)[:2] == \
        (200, {"output": {"total": 3.0}})  # the service kept serving
    wait_for(lambda: small.client.node("hog")["status"] == "Healthy" and
             [i["id"] for i in instances(small, "hog")] != [first["id"]], timeout=30,
             message="the hog to be replaced")
    assert post(hog["endpoint"], {"input": {"steps": 1, "trace": str(trace)}}, hog_key)[:2] == \
        (200, {"output": {"grown": 1}})
    small.client.delete_node("hog")
    small.client.delete_node("adder")


def test_an_instance_that_raised_memory_error_answers_then_is_recycled(small: Service) -> None:
    greedy, key = small.create_node(
        "greedy", checkpoint_body("greedy", GREEDY, "huge:bool", "done", huge=False))
    [first] = instances(small, "greedy")
    status, body, _ = post(greedy["endpoint"], {"input": {"huge": True}}, key)
    assert status == 500 and body["error_name"] == "MemoryError", body
    wait_for(lambda: not alive(first["pid"]), timeout=5, message="the instance to be recycled")
    wait_for(lambda: any("MemoryError" in (e.get("message") or "") and "recycled" in
                         e["message"] for e in small.client.events("greedy")),
             timeout=10, message="an event saying why")
    wait_for(lambda: small.client.node("greedy")["status"] == "Healthy" and
             [i["id"] for i in instances(small, "greedy")] != [first["id"]], timeout=30,
             message="a new instance")
    assert post(greedy["endpoint"], {"input": {"huge": False}}, key)[:2] == \
        (200, {"output": {"done": True}})
    small.client.delete_node("greedy")
