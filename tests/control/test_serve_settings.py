"""`jupyter deploy serve` with a setting it cannot take: it exits 1 with the setting named on
stderr and leaves nothing running (it went on as a bare Jupyter server, and started a
client-mode service besides)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import alive, wait_for
from .servers import environment


def _left_in(root: Path) -> list[int]:
    """Processes working in `root` or naming it: what the refused serve started."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            args = (proc / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd.is_relative_to(root) or str(root).encode() in args:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize(("setting", "named"), [
    ("--DeployApp.gateway_workers=abc",
     "The 'gateway_workers' trait of a DeployApp instance expected an int, not the str 'abc'"),
    ('--DeployApp.interpreters={"py": 3}',
     "Values of the 'interpreters' trait of a DeployApp instance must be a unicode string"),
])
def test_serve_with_an_invalid_setting_exits_naming_it(tmp_path, setting, named):
    try:
        done = subprocess.run(
            [sys.executable, "-m", "jupyter_deploy.cli", "serve", f"--state-dir={tmp_path / 'state'}",
             "--port=0", "--gateway-port=0", "--gateway-grpc-port=0", setting],
            env=environment(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert named in last, last
        assert "Traceback" not in done.stderr
        assert _left_in(tmp_path) == []
        assert not (tmp_path / "state" / "service.json").exists()
    finally:
        for pid in _left_in(tmp_path):  # a regression must not leave them to the next test
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: not alive(pid), timeout=10, message=f"{pid} to exit")
