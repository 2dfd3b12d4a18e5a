"""The Jupyter server extension's link to the deploy service of its state folder.

In a notebook server the extension is a client: it finds the service through the folder's
`service.json`, checks that it answers with its token, and when none runs starts
`jupyter deploy serve` detached (its own session, its output in the folder's `service.log`),
so that stopping the notebook server leaves the service, its gateway and every instance
running. Two servers starting at once both try; the folder's lease lets one service win and
both then use it. A service this link started and that died is started again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..client import discovery
from ..runtimes.lease import LEASE_FILE, holder

LOG_FILE = "service.log"
# A service that failed to start is not started again sooner: every request of a polling
# panel would start one more that fails the same way (a port taken, say).
START_AGAIN_S = 10.0
CONFIG_FILE = "serve_config.json"


def collision_hint(reason: str) -> str:
    """Why a service did not start, and what to do when its port is another service's."""
    if "Address already in use" not in reason:
        return reason
    return (f"{reason}. Another deploy service (a shared one, say) already listens there: "
            "use it with c.DeployApp.service_url = 'http://HOST:PORT/deploy/api' (under "
            "JupyterHub, JUPYTER_DEPLOY_SERVICE_URL in c.Spawner.environment; see "
            "docs/jupyterhub.md), or give this server's service other ports "
            "(c.DeployApp.gateway_port, c.DeployApp.gateway_grpc_port)")


class ServiceDown(Exception):
    """No deploy service answers; the message says why and how to start one."""


@dataclass(frozen=True)
class Target:
    """Where the service's control API is and the token it takes."""

    url: str
    token: str


class ServiceLink:
    """Finds, checks and, when none runs, starts the deploy service of one state folder."""

    def __init__(self, state_dir: str | Path, service_url: str = "", service_token: str = "",
                 start_timeout_s: float = 60.0, service_config: dict[str, Any] | None = None,
                 log: logging.Logger | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.configured = Target(service_url.rstrip("/"), service_token) if service_url else None
        self.start_timeout_s = start_timeout_s
        self.service_config = service_config or {}
        self.log = log or logging.getLogger("jupyter_deploy")
        self.child: subprocess.Popen[bytes] | None = None  # the service this link started
        self._target: Target | None = None
        self._found_once = False  # a service answered once: one stopped later stays stopped
        self._failed: tuple[float, ServiceDown] | None = None  # when, and why it did not start
        self._lock = asyncio.Lock()
        self._http = AsyncHTTPClient(force_instance=True)

    def how_to_start(self) -> str:
        """What the user runs to start the service by hand."""
        if self.configured is not None:
            return f"start the service configured as c.DeployApp.service_url ({self.configured.url})"
        return f"start it with `jupyter deploy serve --state-dir {self.state_dir}`"

    async def target(self, start: bool = True) -> Target:
        """The answering service; started (and waited for) when none runs and `start`."""
        if self._target is not None:
            return self._target
        async with self._lock:
            if self._target is None:
                self._target = await self._resolve(start)
                self._found_once = True
            return self._target

    def lost(self) -> None:
        """The service did not answer: look again next time."""
        self._target = None

    def close(self) -> None:
        """Forget the link; the service runs on (it is not this server's to stop)."""
        self._http.close()

    async def _resolve(self, start: bool) -> Target:
        if self.configured is not None:
            if await self._answers(self.configured):
                return self.configured
            raise ServiceDown(f"the deploy service at {self.configured.url} does not answer; "
                              f"{self.how_to_start()}")
        found = await self._running()
        if found is not None:
            return found
        if not start or not await self._may_start():
            raise ServiceDown(f"no deploy service runs for the state folder {self.state_dir}; "
                              f"{self.how_to_start()}")
        now = asyncio.get_running_loop().time()
        if self._failed is not None and now - self._failed[0] < START_AGAIN_S:
            raise self._failed[1]
        self._spawn()
        try:
            return await self._wait_started()
        except ServiceDown as exc:
            self._failed = (asyncio.get_running_loop().time(), exc)
            raise

    async def _running(self) -> Target | None:
        """The folder's live service if it answers with the token its file gives."""
        info = discovery.read_service(self.state_dir)
        if info is None:
            return None
        found = Target(str(info["url"]).rstrip("/"), str(info.get("token", "")))
        return found if await self._answers(found) else None

    async def _may_start(self) -> bool:
        """Start one at first, and again only if the one this link started died (a service
        stopped cleanly, by `jupyter deploy stop` say, stays stopped)."""
        if self.child is None:
            return not self._found_once
        # A service that stops cleanly removes its file; one that died leaves it behind. (The
        # exit code alone is not enough: if another part of this server reaped the process,
        # Popen reports 0.)
        if self.child.poll() in (None, 0) and self._recorded_pid() != self.child.pid:
            return False
        # Killed, it may take a moment to be gone: its lease goes with its last thread.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while loop.time() < deadline:
            if self.child.poll() is not None or holder(self.state_dir / LEASE_FILE) != \
                    self.child.pid:
                return True
            await asyncio.sleep(0.05)
        return False  # alive, holding its folder, and not answering: not this link's to replace

    def _recorded_pid(self) -> int:
        """The pid in the folder's `service.json`, live or not; 0 when there is none."""
        try:
            return int(json.loads((self.state_dir / discovery.SERVICE_FILE).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    async def _answers(self, target: Target) -> bool:
        request = HTTPRequest(target.url, headers={"Authorization": f"token {target.token}"},
                              connect_timeout=2, request_timeout=5)
        try:
            await self._http.fetch(request)
        except (TimeoutError, HTTPClientError, OSError):
            return False
        return True

    def _spawn(self) -> None:
        """`jupyter deploy serve` for this folder, detached: it outlives this server."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = self.state_dir / CONFIG_FILE
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"DeployApp": self.service_config}, file)
        env = {k: v for k, v in os.environ.items()
               if k not in (discovery.URL_ENV, discovery.TOKEN_ENV)}
        with open(self.state_dir / LOG_FILE, "ab") as log:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "jupyter_deploy.cli", "serve",
                 f"--state-dir={self.state_dir}", f"--config={config}", "--port=0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        self.log.info("jupyter_deploy: started the deploy service of %s (pid %d, log %s)",
                      self.state_dir, self.child.pid, self.state_dir / LOG_FILE)

    async def _wait_started(self) -> Target:
        """Wait for the folder's service, this link's or a rival's that won the lease."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while loop.time() < deadline:
            found = await self._running()
            if found is not None:
                return found
            assert self.child is not None
            if self.child.poll() is not None and not holder(self.state_dir / LEASE_FILE):
                raise ServiceDown(f"the deploy service of {self.state_dir} did not start: "
                                  f"{collision_hint(self._last_log_line())}")
            await asyncio.sleep(0.1)
        raise ServiceDown(f"the deploy service of {self.state_dir} did not answer within "
                          f"{self.start_timeout_s:g} s (its log: {self.state_dir / LOG_FILE})")

    def _last_log_line(self) -> str:
        try:
            lines = (self.state_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else "it wrote nothing"
