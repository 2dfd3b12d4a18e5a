"""How kernels, the CLI and scripts find a running deploy service.

A service announces itself in the Jupyter runtime dir (`jupyter_deploy-<pid>.json`) and, for
the kernels it starts, in the environment (`JUPYTER_DEPLOY_URL`, `JUPYTER_DEPLOY_TOKEN`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

URL_ENV = "JUPYTER_DEPLOY_URL"
TOKEN_ENV = "JUPYTER_DEPLOY_TOKEN"


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def announce(url: str, token: str, gateway_url: str, gateway_grpc_address: str = "") -> Path:
    """Write this process's discovery file and export it to the kernels it will start."""
    folder = _runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"jupyter_deploy-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps({"url": url, "token": token, "gateway_url": gateway_url,
                               "gateway_grpc_address": gateway_grpc_address,
                               "pid": os.getpid()}))
    tmp.rename(path)
    os.environ[URL_ENV], os.environ[TOKEN_ENV] = url, token
    return path


def withdraw(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find() -> dict[str, Any] | None:
    """The service to talk to: the environment's, else the newest live announced one."""
    if os.environ.get(URL_ENV):
        return {"url": os.environ[URL_ENV], "token": os.environ.get(TOKEN_ENV, "")}
    candidates = []
    for path in _runtime_dir().glob("jupyter_deploy-*.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(info.get("pid", 0))):
            candidates.append((path.stat().st_mtime, info))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None
