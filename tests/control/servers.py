"""Real notebook servers as users run them: the extension in its default (client) mode, in
front of a deploy service process of its own."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_deploy.client import discovery

from ..conftest import wait_for, worker_pids

# Only this extension: the others' start-up is not what these tests are about.
EXTENSIONS = {"jupyter_deploy": True, "jupyterlab": False, "jupyter_lsp": False,
              "notebook_shim": False, "jupyter_server_terminals": False}


def environment(root: Path) -> dict[str, str]:
    """A user's environment with Jupyter dirs of its own under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_DEPLOY_")}
    env.update(JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTER_CONFIG_DIR=str(root / "config"),
               JUPYTER_DATA_DIR=str(root / "data"))
    return env


def jupyter_deploy(*args: str, env: dict[str, str], timeout: float = 120
                   ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


STARTED: list[NotebookServer] = []  # stopped after each test, passed or not


class NotebookServer:
    """`jupyter server` with jupyter_deploy enabled, on a free port, with its own token."""

    def __init__(self, root: Path, state_dir: Path, name: str = "server", port: int = 0,
                 argv: tuple[str, ...] = (), **deploy_app: Any) -> None:
        self.root, self.state_dir, self.name = root, state_dir, name
        self.env = environment(root)
        self.token = secrets.token_hex(16)  # a new one at each start, as Jupyter does
        config = root / f"{name}_config.json"
        config.write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": EXTENSIONS, "open_browser": False,
                          "allow_root": True, "ip": "127.0.0.1", "port": port,
                          "port_retries": 0,
                          "allow_unauthenticated_access": False},
            "IdentityProvider": {"token": self.token},
            "DeployApp": {"state_dir": str(state_dir), "gateway_port": 0,
                          "gateway_grpc_port": 0, "request_timeout": 3, **deploy_app}}))
        self.log = root / f"{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server", f"--config={config}", *argv],
                env=self.env,
                cwd=root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        STARTED.append(self)
        info_file = root / "runtime" / f"jpserver-{self.process.pid}.json"

        def listening() -> Any:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                return json.loads(info_file.read_text())
            except (OSError, ValueError):  # not written yet, or half
                return None
        self.url = wait_for(listening, timeout=60, message=f"{name} to listen")["url"].rstrip("/")
        self.api = f"{self.url}/deploy/api"
        self.kernel_env = {**self.env, discovery.URL_ENV: self.api,
                           discovery.TOKEN_ENV: self.token,
                           discovery.STATE_ENV: str(state_dir)}

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             timeout: float = 30) -> tuple[int, Any]:
        """(status, JSON body) of a control-API call through this server."""
        return call(method, self.api + path, self.token if token is None else token, body,
                    timeout=timeout)

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        """The service's answer to `GET /deploy/api` once it comes through this server."""
        def ready() -> Any:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                status, body = self.call("GET", "")
            except OSError:  # not listening yet
                return None
            return body if status == 200 else None
        return wait_for(ready, timeout=timeout, interval=0.1, message=f"{self.name}'s service")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server by its pid, as a user or a hub would."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_all() -> None:
    """Stop every notebook server a test started."""
    while STARTED:
        STARTED.pop().stop()


def stop_service(state_dir: Path, env: dict[str, str]) -> None:
    """`jupyter deploy stop --everything` for the folder, then no instance of it may be left."""
    done = jupyter_deploy("stop", "--everything", f"--state-dir={state_dir}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: not worker_pids(state_dir), timeout=15,
             message="every instance to stop with the service")


def call(method: str, url: str, token: str = "", body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    """(status, JSON body) of one request with `Authorization: token TOKEN`."""
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {}),
                 **({"Authorization": f"token {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, payload.decode(errors="replace")
