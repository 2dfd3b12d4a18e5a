"""Process instances outlive a restart of the service and are adopted (issue 13): checked by
pid, process start time, port and token; anything else of the folder is stopped, and a pid
that now names another program is never signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_deploy.runtimes.identity import RECORDS, start_time

from ..conftest import Service, alive, checkpoint_body, wait_for, worker_pids
from ..gateway.test_gateway import post

KEEP = "--DeployApp.keep_instances=True"
ADDER = checkpoint_body("adder", "total = a + b", "a:float,b:float", "total", a=1.0, b=2.0)
FAST = {"interval_s": 0.2, "pass_threshold": 1}


def instances(service: Service, node: str) -> dict[str, dict[str, Any]]:
    listed = service.client.request("GET", f"/nodes/{node}/instances")["instances"]
    return {i["id"]: i for i in listed}


def call(service: Service, node: str, key: str) -> tuple[int, Any]:
    status, body, _ = post(f"{service.gateway_url}/v1/nodes/{node}:execute",
                           {"input": {"a": 2, "b": 3}}, key)
    return status, body


def records(service: Service) -> Path:
    return service.state_dir / RECORDS


def edit_record(service: Service, instance_id: str, **fields: Any) -> None:
    path = records(service) / f"{instance_id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def stop_all(service: Service) -> None:
    """Stop a service that keeps nothing; none of its instances may be left."""
    service.stop()
    try:
        wait_for(lambda: not worker_pids(service.state_dir), timeout=10,
                 message="every instance to stop with the service")
    finally:
        reap(service.state_dir)


def reap(state_dir: Path) -> None:
    """Kill what a failed test left of the folder's workers (kept instances outlive it)."""
    for pid in worker_pids(state_dir):
        os.kill(pid, signal.SIGKILL)


def test_a_stopped_service_leaves_its_instances_and_the_next_adopts_them(tmp_path: Path
                                                                         ) -> None:
    first = Service(tmp_path, KEEP)
    try:
        node, key = first.create_node("kept", ADDER, min=2, max=2, health=FAST)
        before = {i["id"]: i["pid"] for i in node["instances"]}
    finally:
        first.stop()
    assert first.process.returncode is not None
    if not all(alive(pid) for pid in before.values()):
        reap(first.state_dir)
        raise AssertionError("the instances stopped with the service")
    second = Service(tmp_path)
    try:
        assert call(second, "kept", key) == (200, {"output": {"total": 5.0}})  # at once
        now = instances(second, "kept")
        assert {i: now[i]["pid"] for i in now} == before
        assert all(i["status"] == "Healthy" and i["message"].startswith("adopted pid ")
                   for i in now.values()), now
        assert sorted(worker_pids(second.state_dir)) == sorted(before.values())
    finally:
        stop_all(second)


def test_kill_9_of_the_service_and_a_restart_adopts_everything(tmp_path: Path) -> None:
    first = Service(tmp_path, KEEP)
    try:
        node, key = first.create_node("kept", ADDER, min=3, max=3, health=FAST)
        before = {i["id"]: i["pid"] for i in node["instances"]}
    finally:
        first.process.kill()
        first.process.wait()
    second = Service(tmp_path)
    try:
        assert call(second, "kept", key)[0] == 200
        assert {i: v["pid"] for i, v in instances(second, "kept").items()} == before
        time.sleep(1.0)  # asserting that nothing more starts takes a while (5 checks)
        assert {i: v["pid"] for i, v in instances(second, "kept").items()} == before
        assert sorted(worker_pids(second.state_dir)) == sorted(before.values())  # no duplicate
        assert second.client.node("kept")["status"] == "Healthy"
    finally:
        stop_all(second)


def stray_worker(service: Service) -> subprocess.Popen[bytes]:
    """A worker of the folder that is none of the store's instances."""
    checkpoint = next((service.state_dir / "checkpoints").iterdir())
    key = (service.state_dir / "signing.pub").read_text().strip()
    return subprocess.Popen([sys.executable, "-m", "jupyter_deploy.worker", "--checkpoint",
                             str(checkpoint), "--public-key", key, "--port", "0", "--lease",
                             str((service.state_dir / "service.lock").resolve())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_strays_are_stopped_and_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    first = Service(tmp_path, KEEP)
    try:
        node, key = first.create_node("kept", ADDER, min=3, max=3, health=FAST)
        kept, moved, forged = sorted(node["instances"], key=lambda i: i["id"])
    finally:
        first.process.kill()
        first.process.wait()
    stray = stray_worker(first)
    others = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]  # programs, not workers
    try:
        for instance in (moved, forged):  # their pids now name other programs
            os.kill(instance["pid"], signal.SIGKILL)
            wait_for(lambda pid=instance["pid"]: not alive(pid), message="the worker to end")
        wait_for(lambda: stray.pid in worker_pids(first.state_dir), message="the stray")
        # a recorded start time that no longer matches; and one that matches a non-worker
        edit_record(first, moved["id"], pid=others[0].pid)
        edit_record(first, forged["id"], pid=others[1].pid,
                    start_time=start_time(others[1].pid))
        second = Service(tmp_path)
        try:
            wait_for(lambda: stray.poll() is not None, timeout=10,
                     message="the stray worker to be stopped")
            assert all(other.poll() is None for other in others), "another program signalled"
            wait_for(lambda: second.client.node("kept")["status"] == "Healthy"
                     and len(instances(second, "kept")) == 3, timeout=30,
                     message="the two lost instances to be replaced")
            now = instances(second, "kept")
            assert now[kept["id"]]["pid"] == kept["pid"]  # adopted
            assert moved["id"] not in now and forged["id"] not in now
            assert sorted(worker_pids(second.state_dir)) == sorted(i["pid"] for i in now.values())
            assert call(second, "kept", key)[0] == 200
        finally:
            stop_all(second)
        assert all(other.poll() is None for other in others)
    finally:
        for process in (stray, *others):
            process.kill()
            process.wait()
        reap(first.state_dir)


def test_the_lease_grace_stops_instances_when_no_service_comes_back(tmp_path: Path) -> None:
    first = Service(tmp_path, KEEP, "--DeployApp.instance_lease_grace=1")
    node, _ = first.create_node("kept", ADDER, min=1, max=1)
    pid = node["instances"][0]["pid"]
    first.stop()
    try:
        assert alive(pid)
        started = time.monotonic()
        wait_for(lambda: not alive(pid), timeout=15, message="the orphan to stop on its own")
    finally:
        reap(first.state_dir)
    assert time.monotonic() - started < 8
    log = Path(node["instances"][0]["log_path"]).read_text()
    assert "has not held" in log


def test_an_upgrade_keeps_readable_instances_and_rolls_the_others(tmp_path: Path) -> None:
    first = Service(tmp_path, KEEP)
    try:
        node, key = first.create_node("kept", ADDER, min=2, max=2, maintenance_limit=1,
                                      health=FAST)
        readable, unreadable = sorted(node["instances"], key=lambda i: i["id"])
    finally:
        first.stop()
    # as if an older jupyter_deploy started them; the second read a format no longer read
    edit_record(first, readable["id"], package="0.0.1")
    edit_record(first, unreadable["id"], package="0.0.1", format=0)
    second = Service(tmp_path)
    try:
        seen: list[dict[str, dict[str, Any]]] = []
        failed: list[tuple[int, Any]] = []

        def rolled() -> bool:
            answer = call(second, "kept", key)
            if answer[0] != 200:
                failed.append(answer)
            seen.append(now := instances(second, "kept"))
            healthy = [i for i in now.values() if i["status"] == "Healthy"]
            return unreadable["id"] not in now and len(healthy) == 2

        wait_for(rolled, timeout=40, message="the unreadable instance to be rolled")
        assert not failed, failed
        said = {(e.get("instance"), e["message"]) for e in second.client.events(node="kept")}
        assert any(i == readable["id"] and m.endswith("its checkpoint still reads, kept")
                   for i, m in said), said
        assert any(i == unreadable["id"] and "(rolled)" in m for i, m in said), said
        for now in seen:  # the maintenance limit: one new instance at a time, two serving
            starting = [i for i in now.values() if i["status"] not in ("Healthy", "Deleting")]
            assert len(starting) <= 1, now
            assert sum(i["status"] == "Healthy" for i in now.values()) >= 2, now
        assert instances(second, "kept")[readable["id"]]["pid"] == readable["pid"]
        told = second.client.request("GET", "/events", node="kept")["events"]
        assert any(e["instance"] == unreadable["id"] and e["message"] ==
                   "replaced after an upgrade of jupyter_deploy" for e in told), told
    finally:
        stop_all(second)
