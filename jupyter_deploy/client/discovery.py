"""How kernels, the CLI, scripts and the Jupyter server extension find a running deploy service.

The service (`jupyter deploy serve`) writes `service.json` in its state folder (0600: control
URL, token, gateway URL, gRPC address, pid) and removes it when it stops. The file is believed
only while its pid holds the folder's lease, so a file left behind by a killed service is never
taken for a live one. A Jupyter server announces its own control API in the Jupyter runtime dir
(`jupyter_deploy-<pid>.json`) and, for the kernels it starts, in the environment
(`JUPYTER_DEPLOY_URL`, `JUPYTER_DEPLOY_TOKEN`, `JUPYTER_DEPLOY_STATE_DIR`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..runtimes.lease import LEASE_FILE, holder
from ..store.sqlite import default_state_dir

URL_ENV = "JUPYTER_DEPLOY_URL"
TOKEN_ENV = "JUPYTER_DEPLOY_TOKEN"
STATE_ENV = "JUPYTER_DEPLOY_STATE_DIR"
SERVICE_FILE = "service.json"


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def _write_private(path: Path, info: dict[str, Any]) -> None:
    """Write `info` as JSON at `path` (0600), in one rename so readers never see half."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(info, file)
    tmp.rename(path)


def announce(url: str, token: str, gateway_url: str, gateway_grpc_address: str = "",
             state_dir: str | Path | None = None) -> Path:
    """Write this process's discovery file and export it to the kernels it will start."""
    folder = _runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"jupyter_deploy-{os.getpid()}.json"
    _write_private(path, {"url": url, "token": token, "gateway_url": gateway_url,
                          "gateway_grpc_address": gateway_grpc_address, "pid": os.getpid()})
    os.environ[URL_ENV], os.environ[TOKEN_ENV] = url, token
    if state_dir is not None:
        os.environ[STATE_ENV] = str(state_dir)
    return path


def withdraw(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def write_service(state_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write the state folder's `service.json` for this process (the service)."""
    path = Path(state_dir) / SERVICE_FILE
    _write_private(path, {**info, "pid": os.getpid(), "state_dir": str(state_dir)})
    return path


def remove_service(path: Path | None) -> None:
    """Remove `service.json` if it is still this process's (a successor's stays)."""
    if path is None:
        return
    try:
        mine = json.loads(path.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError):
        return
    if mine:
        path.unlink(missing_ok=True)


def state_dir() -> Path:
    """The state folder clients look in: `$JUPYTER_DEPLOY_STATE_DIR`, else the default."""
    return default_state_dir()


def read_service(folder: str | Path | None = None) -> dict[str, Any] | None:
    """The live service of a state folder from its `service.json`; None when none runs."""
    folder = Path(folder) if folder is not None else state_dir()
    try:
        info = json.loads((folder / SERVICE_FILE).read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The lease is held exactly while the service lives (kill -9 included), and probing it
    # must be skipped in the service's own process: closing a descriptor would drop it.
    if pid != os.getpid() and holder(folder / LEASE_FILE) != pid:
        return None
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _announced() -> dict[str, Any] | None:
    """The newest announcement in the runtime dir of a process that is still alive."""
    candidates = []
    for path in _runtime_dir().glob("jupyter_deploy-*.json"):
        try:
            info = json.loads(path.read_text())
            if _alive(int(info.get("pid", 0))):
                candidates.append((path.stat().st_mtime, info))
        except (OSError, ValueError, TypeError):
            continue
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def find(fresh: bool = False) -> dict[str, Any] | None:
    """The service to talk to: the environment's, else the state folder's, else the newest
    announced one. `fresh` skips the environment, which may date from before a restart."""
    if not fresh and os.environ.get(URL_ENV):
        return {"url": os.environ[URL_ENV], "token": os.environ.get(TOKEN_ENV, "")}
    info = read_service() or _announced()
    if info is None and fresh and os.environ.get(URL_ENV):
        return {"url": os.environ[URL_ENV], "token": os.environ.get(TOKEN_ENV, "")}
    return info
