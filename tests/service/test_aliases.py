"""Aliases, autoscaling and zero-downtime updates, under real load (loopback, bounded)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

import pytest

from jupyter_deploy.client import ClientError

from ..conftest import checkpoint_body, wait_for


def version_cell(name: str, who: str, state: dict | None = None, source: str = "") -> dict:
    """A checkpoint answering `who` (which version served the request)."""
    return checkpoint_body(name, source or f"who = {who!r}", "x:int", "who:str", state=state, x=0)


class Load:
    """`clients` threads calling `url` on keep-alive connections until stopped."""

    def __init__(self, url: str, clients: int, key: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.stopping = threading.Event()
        self.results: list[tuple[float, int, dict[str, Any], str]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _client(self) -> None:
        connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        while not self.stopping.is_set():
            try:
                connection.request("POST", self.url.path, body=b'{"input": {"x": 1}}',
                                   headers=self.headers)
                response = connection.getresponse()
                status, body = response.status, json.loads(response.read())
                node = response.getheader("x-node-id", "")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                status, body, node = 0, {"error": str(exc)}, ""
                connection.close()
                connection = http.client.HTTPConnection(self.url.hostname, self.url.port,
                                                        timeout=30)
            with self.lock:
                self.results.append((time.monotonic(), status, body, node))
        connection.close()

    def count(self) -> int:
        with self.lock:
            return len(self.results)

    def failures(self) -> list[tuple[int, dict]]:
        return [(status, body) for _, status, body, _ in self.results if status != 200]


def test_repoint_and_delete_under_load_loses_no_request(service):
    client = service.client
    service.create_node("blue", version_cell("blue", "blue"), min=2)
    service.create_node("green", version_cell("green", "green"), min=2)
    created = client.set_alias("shop", {"nodes": {"blue": 100}})
    alias, key = created["alias"], created["key"]
    assert key.startswith("jd_")  # a private alias: its key, shown once
    with Load(alias["endpoint"], 32, key) as load:
        wait_for(lambda: load.count() > 300, timeout=30, message="traffic on blue")
        client.set_alias("shop", {"nodes": {"green": 100}})
        switched = load.count()
        wait_for(lambda: load.count() > switched + 300, timeout=30, message="traffic on green")
        client.delete_node("blue")  # drains what blue still has in flight
        deleted = load.count()
        wait_for(lambda: load.count() > deleted + 300, timeout=30, message="more traffic")
    answers = Counter(body.get("output", {}).get("who") for _, _, body, _ in load.results)
    print(f"\n{len(load.results)} requests through the switch: {dict(answers)}")
    assert load.failures() == []
    assert set(answers) == {"blue", "green"}
    assert all(body["output"]["who"] == "green" for _, _, body, _ in load.results[deleted:])
    client.delete_alias("shop")
    client.delete_node("green")


def test_killed_instance_under_load_costs_at_most_its_requests(service):
    client = service.client
    node, key = service.create_node(
        "trio", version_cell("trio", "", source="import time\ntime.sleep(0.002)\nwho = 'trio'"),
        min=3)
    with Load(node["endpoint"], 32, key) as load:
        wait_for(lambda: load.count() > 200, timeout=30, message="traffic")
        os.kill(node["instances"][0]["pid"], signal.SIGKILL)
        killed = load.count()
        wait_for(lambda: load.count() > killed + 500, timeout=30, message="traffic after")
    failures = load.failures()
    print(f"\nkill -9 of 1 of 3 instances under 32 clients: {len(failures)} of "
          f"{len(load.results)} requests failed")
    # least-loaded balancing keeps instances within one request of each other: at most
    # ceil(32 / 3) + 1 requests were in flight on the killed one
    assert len(failures) <= -(-32 // 3) + 1
    wait_for(lambda: client.node("trio")["status"] == "Healthy" and len(
        client.node("trio")["instances"]) == 3, timeout=30, message="the node to recover")
    client.delete_node("trio")


def test_weighted_split_and_shadow_traffic(service):
    client = service.client
    service.create_node("heavy", version_cell("heavy", "heavy"))
    service.create_node("light", version_cell("light", "light"))
    service.create_node("candidate", version_cell("candidate", "candidate"))
    created = client.set_alias("split", {"nodes": {"heavy": 90, "light": 10}, "public": True,
                                         "shadow": {"node": "candidate", "percent": 10},
                                         "metadata": {"team": "pricing"}})
    assert created["key"] is None  # public: no key
    with Load(created["alias"]["endpoint"], 8) as load:
        wait_for(lambda: load.count() >= 2000, timeout=60, message="2000 requests")
    results = load.results[:2000]
    assert load.failures() == []
    share = Counter(node for _, _, _, node in results)
    print(f"\n90/10 split over 2000 requests: {dict(share)}")
    assert abs(share["heavy"] / 2000 * 100 - 90) <= 3
    assert {body["output"]["who"] for _, _, body, _ in results} == {"heavy", "light"}
    shadow = client.request("GET", "/aliases/split/shadow")
    wait_for(lambda: client.request("GET", "/aliases/split/shadow")["requests"] >= 150,
             timeout=10, message="the shadow answers")
    shadow = client.request("GET", "/aliases/split/shadow")
    print(f"shadow: {shadow['requests']} mirrored, p50 {shadow['p50_ms']} ms")
    assert 120 <= shadow["requests"] <= 300  # 10% of at least 2000
    assert shadow["different_output"] == shadow["requests"] and shadow["errors"] == 0
    assert client.request("GET", "/aliases/split")["metadata"] == {"team": "pricing"}
    client.delete_alias("split")
    for name in ("heavy", "light", "candidate"):
        client.delete_node(name)


def test_shadow_copies_its_node_refused_are_errors_not_different_outputs(service):
    """A shadow node too busy for a copy (429: its queue holds none) ran no cell: the copy
    counts as an error, never as an output that differs from the primary's."""
    client = service.client
    service.create_node("steady", version_cell("steady", "same"))
    service.create_node("sleepy", version_cell("sleepy", "same", {"time": time},
                                               "time.sleep(0.3)\nwho = 'same'"), max_queue=0)
    alias = client.set_alias("copied", {"nodes": {"steady": 100}, "public": True,
                                        "shadow": {"node": "sleepy", "percent": 100}})
    url = urllib.parse.urlsplit(alias["alias"]["endpoint"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    for _ in range(6):  # faster than the shadow node runs them: it refuses all but the first
        connection.request("POST", url.path, json.dumps({"input": {"x": 1}}),
                           {"Content-Type": "application/json"})
        answer = connection.getresponse()
        assert (answer.status, json.loads(answer.read())["output"]) == (200, {"who": "same"})
    connection.close()
    shadow = wait_for(lambda: (found := client.request("GET", "/aliases/copied/shadow"))[
        "requests"] == 6 and found, timeout=10, message="six shadow answers")
    refused = [e for e in shadow["recent"] if e["status"] == 429]
    assert refused and shadow["errors"] == len(refused), shadow
    assert (shadow["same_output"], shadow["different_output"]) == (6 - len(refused), 0), shadow
    client.delete_alias("copied")
    for name in ("steady", "sleepy"):
        client.delete_node(name)


def test_sticky_callers_stay_on_one_instance(service):
    client = service.client
    service.create_node("left", version_cell("left", "left"), min=2)
    service.create_node("right", version_cell("right", "right"), min=2)
    endpoint = client.set_alias("sticky", {"nodes": {"left": 50, "right": 50}, "public": True,
                                           "sticky": {"header": "x-user"}})["alias"]["endpoint"]
    seen = {}
    for user in range(12):
        with Load(endpoint, 1, headers={"x-user": f"user-{user}"}) as load:
            wait_for(lambda: load.count() >= 10, timeout=10, message="requests")
        placements = {(node, body["output"]["who"]) for _, _, body, node in load.results}
        assert len(placements) == 1, placements  # one node for the user, every time
        seen[user] = placements.pop()
    assert {node for node, _ in seen.values()} == {"left", "right"}  # users spread
    by_input = client.set_alias("sticky-input", {"nodes": {"left": 50, "right": 50},
                                                 "public": True, "sticky": {"input": "x"}})
    assert http_post(by_input["alias"]["endpoint"], None) == 200
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(endpoint).hostname,
                                            urllib.parse.urlsplit(endpoint).port, timeout=10)
    connection.request("POST", urllib.parse.urlsplit(by_input["alias"]["endpoint"]).path,
                       body=b'{"input": [1]}')
    assert connection.getresponse().status == 422  # not a crash on a malformed input
    connection.close()
    client.delete_alias("sticky-input")
    client.delete_alias("sticky")
    client.delete_node("left")
    client.delete_node("right")


def test_full_weight_needs_a_healthy_node_and_aliased_nodes_stay(service):
    client = service.client
    service.create_node("sleepy", version_cell("sleepy", "sleepy"))
    client.suspend_node("sleepy", True)
    wait_for(lambda: client.node("sleepy")["instances"] == [], timeout=20,
             message="the suspended node to stop its instances")
    assert client.node("sleepy")["suspended"] is True
    with pytest.raises(ClientError) as refused:
        client.set_alias("dream", {"nodes": {"sleepy": 100}})
    assert refused.value.status == 422 and refused.value.body["error"]["field"] == "nodes.sleepy"
    created = client.set_alias("dream", {"nodes": {"sleepy": 100}, "force": True})
    status = http_post(created["alias"]["endpoint"], created["key"])
    assert status == 503
    with pytest.raises(ClientError) as in_use:
        client.delete_node("sleepy")
    assert in_use.value.status == 409 and "alias 'dream'" in in_use.value.message
    forced = {"nodes": {"sleepy": 100}, "force": True}
    for bad, field in (({"nodes": {"sleepy": 60}}, "nodes"),
                       ({"nodes": {"ghost": 100}}, "nodes.ghost"),
                       ({**forced, "force": "yes"}, "force"),
                       ({**forced, "shadow": {"node": "sleepy", "percent": 5}}, "shadow.node"),
                       ({**forced, "shadow": {"node": ["sleepy"], "percent": 5}}, "shadow.node"),
                       ({**forced, "sticky": {"cookie": "id"}}, "sticky")):
        with pytest.raises(ClientError) as info:
            client.set_alias("dream", bad)
        assert (info.value.status, info.value.body["error"]["field"]) == (422, field)
    client.suspend_node("sleepy", False)
    wait_for(lambda: client.node("sleepy")["status"] == "Healthy", timeout=20,
             message="the resumed node")
    assert http_post(created["alias"]["endpoint"], created["key"]) == 200
    client.delete_alias("dream")
    client.delete_node("sleepy")


def http_post(url: str, key: str | None) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    connection.request("POST", parts.path, body=b'{"input": {"x": 1}}', headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_autoscaling_up_under_load_and_down_after(service):
    client = service.client
    node, key = service.create_node(
        "elastic", version_cell("elastic", "", source="import time\ntime.sleep(0.01)\nwho = 'e'"),
        min=1, max=4, autoscale={"target_concurrency": 2, "up_delay_s": 0.5,
                                 "down_delay_s": 1.5})
    counts = []

    def serving() -> int:
        count = sum(i["status"] == "Healthy" for i in client.node("elastic")["instances"])
        counts.append(count)
        return count

    with Load(node["endpoint"], 32, key) as load:
        wait_for(lambda: serving() == 4, timeout=30, message="4 instances under load")
    assert load.failures() == []
    wait_for(lambda: len(client.node("elastic")["instances"]) == 1, timeout=30,
             message="back to 1 instance after the load")
    assert max(counts) == 4 and client.node("elastic")["status"] == "Healthy"
    client.delete_node("elastic")


def test_alias_does_not_wait_for_a_node_scaled_to_zero(service):
    """Callers get the node that can serve now; the sleeping one wakes up for its share."""
    client = service.client
    service.create_node("awake", version_cell("awake", "awake"))
    service.create_node("asleep", version_cell("asleep", "asleep"), min=0, max=1,
                        autoscale={"down_delay_s": 30.0})
    endpoint = client.set_alias("mixed", {"nodes": {"asleep": 50, "awake": 50},
                                          "public": True})["alias"]["endpoint"]
    started = time.monotonic()
    with Load(endpoint, 2) as load:
        wait_for(lambda: load.count() >= 20, timeout=10, message="answers")
    assert load.failures() == [] and time.monotonic() - started < 5
    assert load.results[0][3] == "awake"  # nobody waited for the sleeping node
    wait_for(lambda: any(i["status"] == "Healthy" for i in client.node("asleep")["instances"]),
             timeout=20, message="the sleeping node to wake up for its share")
    client.delete_alias("mixed")
    client.delete_node("awake")
    client.delete_node("asleep")


def test_scale_to_zero_holds_the_first_request(service):
    client = service.client
    node, key = service.create_node(
        "napper", version_cell("napper", "napper"), min=0, max=1,
        autoscale={"down_delay_s": 1.0})
    assert client.node("napper")["instances"] == []
    started = time.monotonic()
    assert http_post(node["endpoint"], key) == 200  # held until an instance is Healthy
    print(f"\nscale from zero: first answer in {time.monotonic() - started:.2f} s")
    wait_for(lambda: client.node("napper")["instances"] == [], timeout=20,
             message="scaling back to zero")
    client.delete_node("napper")


def test_update_rolls_instances_without_a_failed_request(service):
    client = service.client
    node, key = service.create_node("roller", version_cell("rolling", "v1"), min=2)
    v2 = client.add_checkpoint(version_cell("rolling", "v2"))
    serving = []
    with Load(node["endpoint"], 8, key) as load:
        wait_for(lambda: load.count() > 200, timeout=30, message="traffic")
        client.update_node("roller", {"checkpoint": f"rolling@{v2['version']}"})

        def rolled() -> bool:
            instances = client.node("roller")["instances"]
            serving.append(sum(i["status"] == "Healthy" for i in instances))
            return len(instances) == 2 and all(
                i["status"] == "Healthy" and i["generation"].startswith(v2["id"])
                for i in instances)

        wait_for(rolled, timeout=60, message="the roll to finish")
        done = load.count()
        wait_for(lambda: load.count() > done + 100, timeout=30, message="traffic after")
    assert load.failures() == []
    assert min(serving) >= 2  # never fewer instances serving than the minimum
    whos = [body["output"]["who"] for _, _, body, _ in load.results]
    assert whos[0] == "v1" and whos[-1] == "v2"
    client.delete_node("roller")


def test_cli_removes_a_shadow_and_a_weight_change_drops_it(service, tmp_path):
    """Issue 15, item 6: `--no-shadow`, `--shadow NODE=0`, and traffic for the shadow node."""
    client = service.client
    service.create_node("adder-node", version_cell("adder-node", "old"))
    service.create_node("adder-v2", version_cell("adder-v2", "new"))

    def alias_set(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", "alias", "set",
                               "adder", *args], env=service.env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    shadowed = ("adder-v2=100", "--shadow", "adder-node=50")
    assert "shadow adder-node 50%" in alias_set(*shadowed).stdout
    split = alias_set("adder-node=50", "adder-v2=50").stdout
    assert "Note: node 'adder-node' now takes traffic, so it no longer shadows the alias" in split
    assert client.request("GET", "/aliases/adder")["shadow"] is None
    for removal in (("--no-shadow",), ("--shadow", "adder-node=0")):
        alias_set(*shadowed)
        assert client.request("GET", "/aliases/adder")["shadow"] == {"node": "adder-node", "percent": 50}
        done = alias_set("adder-v2=100", *removal)
        assert "shadow" not in done.stdout and "Note:" not in done.stdout
        assert client.request("GET", "/aliases/adder")["shadow"] is None
    client.delete_alias("adder")
    client.delete_node("adder-node")
    client.delete_node("adder-v2")
