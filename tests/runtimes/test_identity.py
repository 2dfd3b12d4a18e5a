"""Who a process instance is (issue 13): its record, its start time, and the worker's token
check that a restarted service's adoption goes through."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.runtimes import identity
from jupyter_deploy.runtimes.identity import TOKEN_ENV, TOKEN_HEADER, Record
from jupyter_deploy.runtimes.lease import is_worker, stop_workers

from ..conftest import wait_for
from .test_isolation import pinned, worker


def test_start_time_reads_field_22_whatever_the_command_name(tmp_path: Path) -> None:
    odd = tmp_path / "a) b 1 2"  # the name in /proc/PID/stat may hold spaces and ')'
    odd.symlink_to("/bin/sleep")
    process = subprocess.Popen([str(odd), "30"])
    try:
        text = Path(f"/proc/{process.pid}/stat").read_text()
        assert "(a) b 1 2)" in text
        assert identity.start_time(process.pid) == int(text.rsplit(")", 1)[1].split()[19])
        assert identity.start_time(process.pid) != identity.start_time(os.getpid())
    finally:
        process.kill()
    wait_for(lambda: identity.start_time(process.pid) is None,
             message="a zombie to have no start time")  # not reaped yet: a zombie
    process.wait()
    assert identity.start_time(process.pid) is None


def test_a_record_reads_back_only_whole_and_well_typed(tmp_path: Path) -> None:
    record = Record("n-1", 123, 456, "127.0.0.1", 8000, "secret", "0.1.0", 1)
    identity.write(tmp_path, record)
    path = tmp_path / "n-1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert identity.read(tmp_path, "n-1") == record
    assert identity.recorded(tmp_path) == ["n-1"]
    for broken in ("{", json.dumps({"id": "n-1"}),
                   json.dumps({**json.loads(path.read_text()), "pid": "123"}),
                   json.dumps({**json.loads(path.read_text()), "port": True})):
        path.write_text(broken)
        assert identity.read(tmp_path, "n-1") is None, broken
    identity.remove(tmp_path, "n-1")
    assert identity.read(tmp_path, "missing") is None and identity.recorded(tmp_path) == []


@pytest.fixture
def token_worker(tmp_path: Path) -> Any:
    """A worker started as the process runtime starts one, with a token of its own."""
    checkpoint = pinned(tmp_path / "checkpoint")
    key = (checkpoint.parent.parent / "signing.pub").read_text().strip()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_deploy.worker", "--checkpoint", str(checkpoint),
         "--public-key", key, "--fd", str(sock.fileno())], pass_fds=(sock.fileno(),),
        env={**os.environ, TOKEN_ENV: "the-token", "JUPYTER_DEPLOY_INSTANCE": "n-1"})
    port = sock.getsockname()[1]
    sock.close()
    try:
        yield process, port
    finally:
        process.kill()
        process.wait()


def adopt(port: int, body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/adopt", method="POST",
                                     data=json.dumps(body).encode())
    if token is not None:
        request.add_header(TOKEN_HEADER, token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_worker_is_adopted_only_with_its_token(token_worker: Any) -> None:
    process, port = token_worker
    wait_for(lambda: _answers(port), timeout=20, message="the worker to listen")
    for token in (None, "", "the-token-not"):
        status, body = adopt(port, {"owner": os.getpid()}, token)
        assert status == 403 and body["error"]["field"] == TOKEN_HEADER, (token, body)
    for owner in (None, "1", True, 0, -5):
        status, body = adopt(port, {"owner": owner}, "the-token")
        assert status == 422 and body["error"]["field"] == "owner", (owner, body)
    status, body = adopt(port, {"owner": os.getpid()}, "the-token")
    assert status == 200 and body["instance"] == "n-1" and body["pid"] == process.pid
    start = identity.start_time(process.pid) or 0
    good = Record("n-1", process.pid, start, "127.0.0.1", port, "the-token", "0.1.0", 1)
    assert asyncio.run(identity.handshake(good, os.getpid()))["pid"] == process.pid
    for wrong in (Record(**{**good.__dict__, "token": "guess"}),
                  Record(**{**good.__dict__, "id": "n-2"}),
                  Record(**{**good.__dict__, "pid": process.pid + 1})):
        with pytest.raises(ValueError):
            asyncio.run(identity.handshake(wrong, os.getpid()))


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_the_sweep_signals_workers_of_the_folder_only(tmp_path: Path) -> None:
    lease = (tmp_path / "service.lock").resolve()
    other = subprocess.Popen(["sleep", "60"])  # a pid the sweep is handed, of another program
    orphan = worker(pinned(tmp_path / "checkpoint"), lease, 60.0)
    try:
        wait_for(lambda: is_worker(orphan.pid, lease), message="the worker to exec")
        stop_workers([other.pid, orphan.pid, 2 ** 22 + 1], lease)
        assert orphan.wait(10) is not None
        assert other.poll() is None
    finally:
        for process in (other, orphan):
            process.kill()
            process.wait()
