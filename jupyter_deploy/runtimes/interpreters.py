"""Which interpreter a process instance runs: the service's own, or one the service's
settings name (`c.DeployApp.interpreters`, name -> path). A path read from a checkpoint is
never run: the kernel's interpreter it records only selects a configured one by equality.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..models import InvalidInput
from ..worker.verify import Refused, verify

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
PROBE = "import jupyter_deploy.worker.app, cloudpickle"  # what an instance must import


def check_interpreters(interpreters: Any) -> dict[str, str]:
    """The setting checked at service start: names are DNS labels, paths absolute
    executables that can run the worker."""
    if not isinstance(interpreters, dict):
        raise InvalidInput("interpreters must be an object {name: path}", field="interpreters")
    checked: dict[str, str] = {}
    for name, path in interpreters.items():
        field = f"interpreters.{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidInput(f"interpreter name {name!r} is not a lowercase DNS label",
                               field="interpreters")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise InvalidInput(f"the path of interpreter {name!r} must be absolute", field=field)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InvalidInput(f"interpreter {name!r}: {path} is not an executable file",
                               field=field)
        probe = subprocess.run([path, "-c", PROBE], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            raise InvalidInput(f"interpreter {name!r} ({path}) cannot run the worker: {last}",
                               field=field)
        checked[name] = os.path.normpath(path)
    return checked


def choose(environment: dict[str, Any], interpreters: dict[str, str]) -> str:
    """The configured interpreter the checkpoint was pinned with, else the service's own."""
    recorded = environment.get("executable")
    if isinstance(recorded, str) and os.path.isabs(recorded):
        for path in interpreters.values():
            if os.path.normpath(recorded) == path:
                return path
    return sys.executable


def checked_interpreter(checkpoint_dir: Path, public_key: bytes,
                        interpreters: dict[str, str]) -> str:
    """The interpreter of a checkpoint that verifies (blocks: for a thread)."""
    try:
        meta = verify(checkpoint_dir, public_key)
    except Refused as exc:
        raise Refused(f"checkpoint {checkpoint_dir.name} refused: {exc}") from None
    environment = meta.get("environment")
    return choose(environment if isinstance(environment, dict) else {}, interpreters)
