"""The gateway in worker processes of its own (issue 13), over real processes and sockets:
two workers share the port, route changes reach each of them, they serve on while the
service is killed, a killed worker is restarted, and /metrics is one view over them all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jupyter_deploy.gateway.fleet import stop_workers, worker_pids
from jupyter_deploy.http.client import ClientProtocol

from ..conftest import Service, alive, checkpoint_body, standalone, wait_for
from ..conftest import worker_pids as instance_pids

WORKERS = "--DeployApp.gateway_workers=2"
CLIENTS = 32


class Caller:
    """One keep-alive connection to the gateway, and the worker it reached."""

    def __init__(self, gateway_url: str) -> None:
        parts = urlsplit(gateway_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connection: ClientProtocol | None = None
        self.worker = ""

    async def connect(self) -> str:
        """A new connection; the worker it reached ("SLOT PID")."""
        self.close()
        _, self.connection = await asyncio.get_running_loop().create_connection(
            lambda: ClientProtocol(1 << 20), self.host, self.port)
        _, headers, _ = await self.call("GET", "/healthz")
        self.worker = headers["x-gateway-worker"]
        return self.worker

    async def call(self, method: str, path: str, body: bytes = b"",
                   key: str | None = None) -> tuple[int, dict[str, str], bytes]:
        assert self.connection is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: {len(body)}\r\n"
        if key is not None:
            head += f"Authorization: Bearer {key}\r\n"
        async with asyncio.timeout(10):
            return await self.connection.request([head.encode() + b"\r\n" + body])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


async def by_worker(gateway_url: str, count: int = 2) -> dict[str, Caller]:
    """A connection to each of `count` workers (new connections until each was reached)."""
    found: dict[str, Caller] = {}
    for _ in range(200):
        caller = Caller(gateway_url)
        worker = await caller.connect()
        if worker in found:
            caller.close()
        else:
            found[worker] = caller
        if len(found) == count:
            return found
    raise AssertionError(f"connections reached only {sorted(found)}")


class Load:
    """`CLIENTS` callers, each POSTing in a loop on its own keep-alive connection; a failed
    request is counted and the caller connects again."""

    def __init__(self, gateway_url: str, path: str, key: str | None) -> None:
        self.gateway_url, self.path, self.key = gateway_url, path, key
        self.ok = 0
        self.failures: Counter[str] = Counter()  # by the worker the caller was on
        self.on: dict[int, str] = {}  # caller -> the worker it is connected to
        self.stopping = False

    async def run(self, seconds: float, during: Any = None) -> None:
        tasks = [asyncio.ensure_future(self._caller(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0.5)
        if during is not None:
            await during()
        await asyncio.sleep(seconds)
        self.stopping = True
        await asyncio.gather(*tasks)

    async def _caller(self, number: int) -> None:
        caller = Caller(self.gateway_url)
        body = json.dumps({"input": {"a": 1, "b": 2}}).encode()
        while not self.stopping:
            try:
                if caller.connection is None:
                    self.on[number] = await caller.connect()
                status, _, _ = await caller.call("POST", self.path, body, self.key)
                if status != 200:
                    raise AssertionError(f"status {status}")
                self.ok += 1
            except Exception:  # a reset connection, a timeout, a status other than 200
                self.failures[self.on.get(number, "")] += 1
                caller.close()
                await asyncio.sleep(0.01)
        caller.close()


def adder(service: Service, name: str = "adder", **spec: Any) -> tuple[dict[str, Any], str]:
    return service.create_node(name, checkpoint_body(
        name, "total = a + b", "a:float,b:float", "total", a=1.0, b=2.0), **spec)


def metrics_text(caller_url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(caller_url + "/metrics", timeout=10) as response:
        return response.read().decode()


def node_requests(text: str, node: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("node_requests_total{") and f'node_id="{node}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory):
    with standalone(tmp_path_factory.mktemp("workers"), WORKERS) as running:
        yield running


def test_both_workers_take_connections_and_answer(workers):
    node, key = adder(workers, "both")
    pids = worker_pids(workers.state_dir)
    assert len(pids) == 2 and all(alive(p) for p in pids.values())

    async def check() -> None:
        callers = await by_worker(workers.gateway_url)
        assert {w.split()[1] for w in callers} == {str(p) for p in pids.values()}
        for caller in callers.values():
            status, _, body = await caller.call("POST", "/v1/nodes/both:execute",
                                                b'{"input": {"a": 2, "b": 3}}', key)
            assert (status, json.loads(body)) == (200, {"output": {"total": 5.0}})
            caller.close()

    asyncio.run(check())
    workers.client.delete_node("both")


def test_a_route_change_reaches_every_worker_before_the_call_returns(workers):
    first, key = adder(workers, "first")
    adder(workers, "second")

    async def check() -> None:
        callers = await by_worker(workers.gateway_url)
        # a new node: create returns once every worker applied it (no 404 anywhere)
        await asyncio.to_thread(workers.client.create_node, {
            "name": "third", "checkpoint": "first", "min": 0})
        for caller in callers.values():
            status, _, _ = await caller.call("POST", "/v1/nodes/third:execute",
                                             b'{"input": {"a": 1, "b": 1}}', "jd_none")
            assert status == 403  # known (its key is checked), where a moment ago: 404
        # an alias re-pointed: sent to every worker before the PUT returns; each worker
        # applies it on its next loop turn (the bound: well under 50 ms here)
        for target in ("first", "second", "first"):
            await asyncio.to_thread(workers.client.set_alias, "pointed",
                                    {"nodes": {target: 100}, "public": True})
            sent = time.monotonic()
            for caller in callers.values():
                while True:
                    _, headers, _ = await caller.call("POST", "/v1/aliases/pointed:execute",
                                                      b'{"input": {"a": 1, "b": 1}}')
                    if headers.get("x-node-id") == target:
                        break
                    assert time.monotonic() - sent < 0.05, "a worker routed the old way"
        for caller in callers.values():
            caller.close()

    asyncio.run(check())
    assert first["status"] == "Healthy" and key
    workers.client.delete_alias("pointed")
    for name in ("first", "second", "third"):
        workers.client.delete_node(name)


def test_a_killed_worker_is_restarted_and_fails_only_what_it_had_in_flight(workers):
    node, key = adder(workers, "steady", min=2)
    before = worker_pids(workers.state_dir)
    load = Load(workers.gateway_url, "/v1/nodes/steady:execute", key)
    killed: dict[str, Any] = {}

    async def kill() -> None:
        on = Counter(load.on.values())
        victim = max(on, key=lambda w: on[w])  # the worker with the most callers
        killed["worker"], killed["callers"] = victim, on[victim]
        os.kill(int(victim.split()[1]), signal.SIGKILL)

    asyncio.run(load.run(3.0, kill))
    slot, pid = killed["worker"].split()
    after = wait_for(lambda: (p := worker_pids(workers.state_dir)).get(int(slot)) not in
                     (None, int(pid)) and p, timeout=20, message="the worker to be restarted")
    assert after[1 - int(slot)] == before[1 - int(slot)]  # the other one went on
    # only callers on the killed worker failed, each once: the request it had in flight
    assert set(load.failures) <= {killed["worker"]}, load.failures
    assert sum(load.failures.values()) <= killed["callers"] <= CLIENTS, load.failures
    assert load.ok > 100

    async def serves() -> None:
        callers = await by_worker(workers.gateway_url)
        assert str(after[int(slot)]) in {w.split()[1] for w in callers}

    asyncio.run(serves())
    workers.client.delete_node("steady")


def test_metrics_are_one_view_over_the_workers(workers):
    node, key = adder(workers, "counted")
    load = Load(workers.gateway_url, "/v1/nodes/counted:execute", key)
    asyncio.run(load.run(1.0))
    assert not load.failures

    async def scrape_each() -> list[str]:
        callers = await by_worker(workers.gateway_url)
        texts = []
        for caller in callers.values():
            status, _, body = await caller.call("GET", "/metrics")
            assert status == 200
            texts.append(body.decode())
            caller.close()
        return texts

    texts = asyncio.run(scrape_each())
    # every worker answers with the sum over all of them: what the callers were answered
    assert [node_requests(t, "counted") for t in texts] == [load.ok] * 2
    checked = subprocess.run(["promtool", "check", "metrics"], input=texts[0].encode(),
                             capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    stats = workers.client.request("GET", "/nodes/counted/stats")
    assert stats["requests"] == load.ok
    workers.client.delete_node("counted")


def test_workers_serve_on_while_the_service_is_killed_then_are_taken_back(tmp_path: Path):
    first = Service(tmp_path, WORKERS)
    restarted: Service | None = None
    try:
        node, key = adder(first, "survivor", min=2)
        first.client.set_alias("lasting", {"nodes": {"survivor": 100}, "public": True})
        before = worker_pids(first.state_dir)
        instances = {i["id"] for i in node["instances"]}

        # kill -9: no request fails while no service runs (the instances are up)
        first.process.kill()
        first.process.wait()
        for path, used in (("/v1/nodes/survivor:execute", key),
                           ("/v1/aliases/lasting:execute", None)):
            load = Load(first.gateway_url, path, used)
            asyncio.run(load.run(2.0))
            assert not load.failures and load.ok > 100, (path, load.failures)
        assert worker_pids(first.state_dir) == before

        # a new service takes the workers back (same processes, same port), and its routes
        # reach them
        load = Load(first.gateway_url, "/v1/nodes/survivor:execute", key)
        started: dict[str, Any] = {}

        async def restart() -> None:
            started["service"] = await asyncio.to_thread(Service, tmp_path, WORKERS)

        asyncio.run(load.run(2.0, restart))
        restarted = started["service"]
        assert restarted.gateway_url == first.gateway_url
        assert worker_pids(restarted.state_dir) == before
        wait_for(lambda: restarted.client.node("survivor")["status"] == "Healthy", timeout=30)
        now = {i["id"] for i in restarted.client.node("survivor")["instances"]}
        assert now == instances  # the instances were adopted: nothing failed
        assert not load.failures, load.failures
        restarted.client.set_alias("lasting", {"nodes": {"survivor": 100}, "public": False})

        async def private_everywhere() -> None:
            for caller in (await by_worker(restarted.gateway_url)).values():
                status, _, _ = await caller.call("POST", "/v1/aliases/lasting:execute",
                                                 b'{"input": {"a": 1, "b": 1}}')
                assert status == 401  # the re-pointed alias wants a key now, on each worker
                caller.close()

        asyncio.run(private_everywhere())
    finally:
        for running in (restarted, first):
            if running is not None and running.process.poll() is None:
                running.stop()
        stop_workers(tmp_path / "state")
        for pid in instance_pids(tmp_path / "state"):  # left by a service killed, if any
            os.kill(pid, signal.SIGKILL)


def test_an_instance_busy_through_one_worker_is_busy_for_the_others(workers):
    """Admission control counts every worker's requests (the board): with no queue, a call
    through the other worker while the instance runs one is refused at once (429), where
    each worker counting its own would have sent it to the busy instance."""
    node, key = workers.create_node("napper", checkpoint_body(
        "napper", "import time\ntime.sleep(s)\ndone = s", "s:float", "done", s=0.0))
    workers.client.update_node("napper", {"max_queue": 0})

    async def check() -> None:
        first, second = (await by_worker(workers.gateway_url)).values()
        long = asyncio.ensure_future(first.call("POST", "/v1/nodes/napper:execute",
                                                b'{"input": {"s": 1.5}}', key))
        await asyncio.sleep(0.5)  # it runs on the instance now
        started = time.monotonic()
        status, headers, body = await second.call("POST", "/v1/nodes/napper:execute",
                                                  b'{"input": {"s": 0.0}}', key)
        assert time.monotonic() - started < 0.5
        assert status == 429 and json.loads(body)["error"]["code"] == "queue_full"
        assert (await long)[0] == 200
        # free again: the other worker's call goes through
        assert (await second.call("POST", "/v1/nodes/napper:execute",
                                  b'{"input": {"s": 0.0}}', key))[0] == 200
        first.close()
        second.close()

    asyncio.run(check())
    workers.client.delete_node("napper")


def test_a_sigterm_of_the_service_leaves_the_workers_serving(tmp_path: Path):
    service = Service(tmp_path, WORKERS)
    try:
        before = worker_pids(service.state_dir)
        service.stop(everything=False)  # SIGTERM, as a restart of the service does
        assert service.process.returncode == 0
        assert worker_pids(service.state_dir) == before

        async def check() -> None:
            callers = await by_worker(service.gateway_url)
            assert {w.split()[1] for w in callers} == {str(p) for p in before.values()}
            for caller in callers.values():
                caller.close()

        asyncio.run(check())
    finally:
        stopped = stop_workers(service.state_dir)  # what `jupyter deploy stop --everything` does
    assert sorted(stopped) == sorted(before.values())
    assert not worker_pids(service.state_dir)
    assert not any(alive(pid) for pid in stopped)


def test_workers_of_other_settings_are_replaced_by_the_next_service(tmp_path: Path):
    first = Service(tmp_path, WORKERS)
    second: Service | None = None
    try:
        before = worker_pids(first.state_dir)
        first.stop(everything=False)
        second = Service(tmp_path, WORKERS, "--DeployApp.gateway_public_url=http://gw.test")
        after = worker_pids(second.state_dir)
        assert set(after) == {0, 1} and not set(after.values()) & set(before.values())
        wait_for(lambda: not any(alive(pid) for pid in before.values()), timeout=10,
                 message="the workers of the old settings to stop")
        assert second.gateway_url == first.gateway_url  # the same port, taken over
    finally:
        for running in (second, first):
            if running is not None and running.process.poll() is None:
                running.stop()
        stop_workers(tmp_path / "state")
