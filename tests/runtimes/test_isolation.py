"""What an instance gets from the service, and what it keeps (issue 12): the environment by
allow-list, secrets never shown, store files 0600 in a 0700 folder, the resident-set watch
where no cgroup can be made, and workers tied to the state folder's lease."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_deploy.runtimes.lease import hold
from jupyter_deploy.runtimes.memory import MemoryGuard

from ..conftest import Service, checkpoint_body, standalone, wait_for
from ..gateway.test_gateway import post

TOKEN = "tok-3f9a1c7e5b2d4f60"  # a credential of the service's, under a name no deny-list has
SECRET = "s3cr3t-9b8e7d6c5a4f"
ENV_CELL = """import base64
import json
import os
names = sorted(os.environ)
has_secret = os.environ.get("API_SECRET") == expected
"""


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose own environment holds SOME_TOKEN."""
    os.environ["SOME_TOKEN"] = TOKEN
    try:
        with standalone(tmp_path_factory.mktemp("isolation")) as running:
            yield running
    finally:
        del os.environ["SOME_TOKEN"]


def test_an_instance_gets_the_node_env_and_a_minimal_base_only(tokened: Service) -> None:
    assert tokened.env["SOME_TOKEN"] == TOKEN
    node, key = tokened.create_node(
        "envy", checkpoint_body("envy", ENV_CELL, "expected:str", "names,has_secret",
                                expected=SECRET),
        env={"GREETING": "hi"}, secrets={"API_SECRET": SECRET})
    status, body, _ = post(node["endpoint"], {"input": {"expected": SECRET}}, key)
    assert status == 200, body
    names = set(body["output"]["names"])
    assert body["output"]["has_secret"] is True
    assert {"GREETING", "API_SECRET", "PATH"} <= names
    assert "SOME_TOKEN" not in names
    allowed = {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM",
               "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "SSL_CERT_FILE",
               "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PYTHONHOME", "GREETING", "API_SECRET",
               "JUPYTER_DEPLOY_INSTANCE"}
    assert {n for n in names if not n.startswith("LC_")} <= allowed, names - allowed


def test_secrets_never_show_in_logs_events_answers_or_metrics(tokened: Service) -> None:
    node, key = tokened.create_node(
        "quiet", checkpoint_body("quiet", "echo = word", "word:str", "echo", word="x"),
        secrets={"API_SECRET": SECRET})
    assert post(node["endpoint"], {"input": {"word": "hello"}}, key)[0] == 200
    client = tokened.client
    shown = [repr(client.nodes()), repr(client.node("quiet")), repr(client.events()),
             repr(client.request("GET", "/nodes/quiet/instances")), repr(client.logs("quiet")),
             client.metrics("quiet"),
             urllib.request.urlopen(f"{tokened.gateway_url}/metrics").read().decode(),
             (tokened.root / "service.log").read_text()]
    shown += [p.read_text() for p in (tokened.state_dir / "logs").rglob("*.log*")]
    for where, text in enumerate(shown):
        assert SECRET not in text and TOKEN not in text, (where, text[:2000])


def test_the_state_folder_is_0700_and_the_store_files_0600(tokened: Service) -> None:
    tokened.create_node("modes", checkpoint_body("modes", "y = x", "x:int", "y", x=1))
    state = tokened.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = [state / name for name in ("deploy.db", "deploy.db-wal", "deploy.db-shm",
                                       "service.lock")]
    assert all(f.exists() for f in files), list(state.iterdir())
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == \
        {f.name: "0o600" for f in files}


def test_the_resident_set_watch_kills_a_process_over_its_limit(tmp_path: Path) -> None:
    guard = MemoryGuard(cgroups=None, interval_s=0.05)
    hog = subprocess.Popen([sys.executable, "-c", "import time\nchunks = []\n"
                            "while True:\n    chunks.append(b'x' * (5 << 20))\n"
                            "    time.sleep(0.01)\n"])
    try:
        guard.add("hog", hog.pid, 120)
        assert hog.wait(10) == -signal.SIGKILL
        verdict = guard.verdict("hog")
        assert verdict is not None and "memory limit of 120 MB (peak " in verdict, verdict
        peak = int(verdict.rsplit("peak ", 1)[1].split()[0])
        assert 120 < peak < 150, verdict
    finally:
        hog.kill()
        hog.wait()
        guard.close()


def pinned(folder: Path) -> Path:
    """A checkpoint folder as the service stores it, signed with its state folder's key."""
    import asyncio

    from jupyter_deploy.service.checkpoints import Checkpoints
    from jupyter_deploy.service.observe import EventLog
    from jupyter_deploy.store.sqlite import Store

    store = Store(folder)
    try:
        checkpoints = Checkpoints(store, EventLog(store))
        made = asyncio.run(checkpoints.add(checkpoint_body("twice", "y = 2 * x", "x:int", "y",
                                                           x=1)))
        return store.checkpoint_dir(made["id"])
    finally:
        store.close()


def worker(checkpoint: Path, lease: Path, grace_s: float) -> subprocess.Popen[bytes]:
    key = (checkpoint.parent.parent / "signing.pub").read_text().strip()
    return subprocess.Popen([sys.executable, "-m", "jupyter_deploy.worker", "--checkpoint",
                             str(checkpoint), "--public-key", key, "--port", "0", "--lease",
                             str(lease), "--lease-grace", str(grace_s), "--log-file",
                             str(lease.parent / "worker.log")])


def test_a_worker_stops_once_no_service_holds_the_folder_lease(tmp_path: Path) -> None:
    lease = tmp_path / "service.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from jupyter_deploy.runtimes.lease import hold\n"
                               f"f = open({str(lease)!r}, 'a+'); hold(f); print('held')\n"
                               "sys.stdout.flush(); time.sleep(60)"], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    holder.kill()  # kill -9 of the service before its worker even started
    holder.wait()
    started = time.monotonic()
    orphan = worker(pinned(tmp_path / "checkpoint"), lease, 0.5)
    try:
        wait_for(lambda: orphan.poll() is not None, timeout=10, message="the worker to stop")
        assert time.monotonic() - started < 5
        assert "the deploy service that started this instance has not held" in (tmp_path / "worker.log").read_text()
    finally:
        orphan.kill()
        orphan.wait()


def test_a_held_lease_keeps_workers_running(tmp_path: Path) -> None:
    lease = tmp_path / "service.lock"
    with open(lease, "a+") as file:
        hold(file)
        kept = worker(pinned(tmp_path / "checkpoint"), lease, 0.2)
        try:
            wait_for(lambda: "restored" in (tmp_path / "worker.log").read_text()
                     if (tmp_path / "worker.log").exists() else False, timeout=10,
                     message="the worker to restore its checkpoint")
            time.sleep(1.0)  # asserting that nothing happens takes a while
            assert kept.poll() is None
        finally:
            kept.kill()
            kept.wait()
