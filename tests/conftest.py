"""Fixtures: a real deploy service (in the test's server, or standalone), real kernels."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.client import DeployClient, discovery
from jupyter_deploy.gateway.fleet import stop_workers
from jupyter_deploy.gateway.fleet import worker_pids as fleet_pids
from jupyter_deploy.kernel.capture import capture
from jupyter_deploy.types import parse_fields

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with `message` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


async def until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
                message: str = "condition") -> Any:
    """The same as `wait_for`, for tests running on the event loop."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        await asyncio.sleep(interval)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only a reaper is missing.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # it exited since the signal above
        return False
    return "\nState:\tZ" not in status


def checkpoint_body(name: str, source: str, inputs: str = "", outputs: str = "",
                    state: dict[str, Any] | None = None, **example: Any) -> dict[str, Any]:
    """What `%%deploy pin` sends, built in-process: run `source`, then capture it."""
    namespace = {"__name__": "__main__", **(state or {}), **example}
    exec(compile(source, f"<cell {name}>", "exec"), namespace)
    meta, data = capture(name, source, namespace, parse_fields(inputs, "--inputs"),
                         parse_fields(outputs, "--outputs"), example)
    return {**meta, "data": base64.b64encode(data).decode()}


def worker_pids(state_dir: Path) -> list[int]:
    """Processes running an instance of a checkpoint stored under `state_dir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"jupyter_deploy.worker" in cmdline and any(
                    str(state_dir).encode() in part for part in cmdline) and alive(int(proc.name)):
                pids.append(int(proc.name))
    return pids


# In-process: the control API inside the test's Jupyter server (pytest-jupyter) -------------

@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_deploy": True,
                                              "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "DeployApp": {"state_dir": str(tmp_path / "state"), "gateway_port": 0,
                      "gateway_grpc_port": 0, "gateway_workers": 0},  # in the server's process
    }


@pytest.fixture
def jp_argv() -> list[str]:
    """In-process tests host the service in the test's server (a notebook server's default is
    to be a client of a service process of its own: tests/control/test_service_process.py)."""
    return ["--DeployApp.host_service=True"]


@pytest.fixture
def deploy(jp_serverapp, jp_asyncio_loop, monkeypatch):
    """The deploy service of the test's server, started as the server starts it.

    After the test it is stopped, and none of its instances may be left running.
    """
    for name in (discovery.URL_ENV, discovery.TOKEN_ENV):
        monkeypatch.setenv(name, "")  # restored after the test: announce() sets them
    app = jp_serverapp.extension_manager.extension_points["jupyter_deploy"].app
    app.service.keep_instances = False  # the test's server leaves no instance behind
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    yield app.service
    # everything: a test's server that configured gateway workers leaves none of them either
    jp_asyncio_loop.run_until_complete(app.service.stop(everything=True))
    jp_asyncio_loop.run_until_complete(app.stop_extension())
    assert not worker_pids(app.service.state_dir), "instances left running"
    assert not fleet_pids(app.service.state_dir), "gateway workers left running"


# Standalone: `jupyter deploy serve` in its own process, shared by a test session ---------

class Service:
    """A `jupyter deploy serve` process and a client of its control API. Unlike the
    command's default, it stops its process instances when stopped, unless the options say
    `--DeployApp.keep_instances=True`."""

    def __init__(self, root: Path, *options: str) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
                    "JUPYTER_CONFIG_DIR": str(root / "config"),
                    "JUPYTER_DATA_DIR": str(root / "data")}
        for name in (discovery.URL_ENV, discovery.TOKEN_ENV):
            self.env.pop(name, None)
        log = open(root / "service.log", "wb")  # noqa: SIM115
        keep = [] if any(o.startswith("--DeployApp.keep_instances") for o in options) else \
            ["--DeployApp.keep_instances=False"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_deploy.cli", "serve", "--port=0",
             "--gateway-port=0", "--gateway-grpc-port=0", f"--state-dir={self.state_dir}",
             "--DeployApp.request_timeout=3", *options, *keep],
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=root)
        announcement = root / "runtime" / f"jupyter_deploy-{self.process.pid}.json"
        wait_for(lambda: announcement.exists() or self.process.poll() is not None,
                 timeout=60, message="the deploy service to start")
        assert self.process.poll() is None, (root / "service.log").read_text()
        info = json.loads(announcement.read_text())
        self.url, self.token, self.gateway_url = info["url"], info["token"], info["gateway_url"]
        self.grpc_address = info["gateway_grpc_address"]
        self.client = DeployClient(self.url, self.token)
        self.kernel_env = {**self.env, discovery.URL_ENV: self.url,
                           discovery.TOKEN_ENV: self.token}

    def stop(self, everything: bool = True) -> None:
        """SIGTERM; with `everything`, its gateway workers too (a SIGTERM leaves them)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if everything:
            stop_workers(self.state_dir)

    def create_node(self, name: str, checkpoint: dict[str, Any], healthy_within: float = 30,
                    **spec: Any) -> tuple[dict[str, Any], str]:
        """Pin `checkpoint`, create a node from it and wait until it is Healthy."""
        pinned = self.client.add_checkpoint(checkpoint)
        created = self.client.create_node({"name": name, "checkpoint": pinned["name"], **spec})
        if spec.get("min", 1) > 0:
            wait_for(lambda: self.client.node(name)["status"] == "Healthy",
                     timeout=healthy_within, message=f"node {name} to be Healthy")
        return self.client.node(name), created["key"]


@contextmanager
def standalone(root: Path, *options: str) -> Iterator[Service]:
    """A standalone service (with `jupyter deploy serve` options), stopped with every
    instance afterwards."""
    running = Service(root, *options)
    try:
        yield running
    finally:
        running.stop()
    wait_for(lambda: not worker_pids(running.state_dir), timeout=10,
             message="every instance to stop with the service")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with standalone(tmp_path_factory.mktemp("service")) as running:
        yield running
