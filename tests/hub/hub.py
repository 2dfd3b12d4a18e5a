"""A real JupyterHub for tests: configurable-http-proxy, DummyAuthenticator, local processes,
users alice and bob, the group `analysts` (alice), and the deploy service as a hub service."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyter_deploy.runtimes.lease import ask_everything

from ..conftest import wait_for, worker_pids
from ..control.servers import call

REPO = Path(__file__).resolve().parents[2]
PROXY = REPO / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
MARK = "JUPYTER_DEPLOY_HUB_TEST"  # in the environment of every process the hub starts
PASSWORD = "a-test-password"
# Only this extension in the users' servers: the others' start-up is not under test.
USER_SERVER = {"ServerApp": {"jpserver_extensions": {
    "jupyter_deploy": True, "jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False,
    "jupyter_server_terminals": False}}}


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def documented_config() -> str:
    """The `jupyterhub_config.py` of docs/jupyterhub.md."""
    text = (REPO / "docs" / "jupyterhub.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def hub_config(root: Path, ports: list[int], harness_token: str) -> str:
    """The documented configuration on free ports under `root`, plus what only tests need:
    the proxy's address and command, the harness's admin service, the users' test settings."""
    public, hub, proxy_api, service = ports
    settings = {"HUB_URL": f"http://127.0.0.1:{public}", "HUB_API": f"http://127.0.0.1:{hub}",
                "DEPLOY_URL": f"http://127.0.0.1:{service}",
                "STATE_DIR": f"{root}/deploy-state", "HOMES": f"{root}/home"}
    lines = []
    for line in documented_config().splitlines():
        name = line.split(" = ", 1)[0]
        lines.append(f"{name} = {settings.pop(name)!r}" if name in settings else line)
    assert not settings, f"docs/jupyterhub.md no longer sets {sorted(settings)}"
    return "\n".join(lines) + f"""
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.ConfigurableHTTPProxy.pid_file = "{root}/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Spawner.cmd = [{str(Path(sys.executable).parent / "jupyterhub-singleuser")!r}]
c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 60
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # spawn users' servers at once
c.Spawner.environment.update({{"JUPYTER_CONFIG_DIR": "{root}/user-config", "{MARK}": "{root}"}})
deploy = c.JupyterHub.services[0]
deploy["command"] += ["--gateway-port=0", "--gateway-grpc-port=0",
                      "--DeployApp.gateway_workers=1"]
deploy["environment"] = {{"PYTHONPATH": {os.environ.get("PYTHONPATH", "")!r}, "{MARK}": "{root}"}}
c.JupyterHub.services.append({{"name": "harness", "api_token": {harness_token!r}}})
c.JupyterHub.load_roles.append({{"name": "harness", "services": ["harness"],
                                "scopes": ["admin:users", "admin:servers", "tokens"]}})
"""


class Hub:
    """One `jupyterhub` process on 127.0.0.1 with everything under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = free_ports(4)
        self.url = f"http://127.0.0.1:{self.ports[0]}"
        self.service_url = f"http://127.0.0.1:{self.ports[3]}/services/deploy"
        self.token = secrets.token_hex(16)
        (root / "user-config").mkdir(parents=True)
        (root / "user-config" / "jupyter_server_config.json").write_text(json.dumps(USER_SERVER))
        config = root / "jupyterhub_config.py"
        config.write_text(hub_config(root, self.ports, self.token))
        self.config = config
        self.log = root / "hub.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the hub (again: the same ports, database and users)."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", f"--config={self.config}"], cwd=self.root,
                env={**os.environ, MARK: str(self.root)}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._up(), timeout=60, interval=0.2, message="the hub")

    def _up(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.api("GET", "")[0] == 200
        except OSError:  # not listening yet
            return False

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The hub's REST API, as the harness service (an admin of users and servers)."""
        return call(method, f"{self.url}/hub/api{path}", self.token, body)

    def start_servers(self, *users: str) -> dict[str, str]:
        """Start each user's server, wait until it is ready; each user's own API token."""
        for user in users:
            status, body = self.api("POST", f"/users/{user}")
            assert status in (201, 409), body  # 409: there already
            status, body = self.api("POST", f"/users/{user}/server")
            assert status in (201, 202, 400), body  # 400: already running
        for user in users:
            wait_for(lambda user=user: self.api("GET", f"/users/{user}")[1]
                     ["servers"].get("", {}).get("ready"), timeout=90, interval=0.2,
                     message=f"{user}'s server")
        return {user: self.api("POST", f"/users/{user}/tokens",
                               {"note": "tests"})[1]["token"] for user in users}

    def restart(self) -> None:
        """Stop the hub (its proxy, the users' servers and the service stop with it) and
        start it again; nodes, their instances and the gateway's workers run on."""
        self.halt()
        self.start()

    def halt(self) -> None:
        """SIGTERM the hub and wait for it to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the hub, the service with everything it runs, then check that no process
        started for this hub is left."""
        if (self.root / "deploy-state").is_dir():
            ask_everything(self.root / "deploy-state")  # the service stops at the hub's SIGINT
        self.halt()
        try:
            wait_for(lambda: not marked(self.root) and not worker_pids(self.root), timeout=30,
                     message="the hub's processes to end")
        finally:
            for pid in marked(self.root) + worker_pids(self.root):  # ours, by pid
                os.kill(pid, signal.SIGKILL)


def marked(root: Path) -> list[int]:
    """Processes started for the hub under `root` that still run."""
    found = []
    needle = f"{MARK}={root}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def commands(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def deploy_services(root: Path) -> list[int]:
    """The `jupyter deploy serve` processes started for this hub."""
    return [pid for pid in marked(root) if "jupyter_deploy.cli serve" in commands(pid)]


