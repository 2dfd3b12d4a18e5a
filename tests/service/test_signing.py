"""Verified checkpoints: the service signs what it pins, instances run only what verifies, and
the interpreter is the service's (or one its settings name), never a path from a checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import checkpoint_body, until, worker_pids
from ..control.test_api import ADDER, call


class Payload:
    """A pickle that writes `marker` when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def script(path: Path, marker: Path) -> Path:
    """An executable that leaves `marker`, then runs the worker as an interpreter would."""
    path.write_text(f"#!/bin/sh\necho ran > {marker}\nexec {sys.executable} \"$@\"\n")
    path.chmod(0o755)
    return path


async def pinned(jp_fetch: Any, deploy: Any, body: dict[str, Any] | None = None) -> Path:
    checkpoint = await call(jp_fetch, "checkpoints", method="POST",
                            body=body or checkpoint_body("adder", **ADDER))
    return Path(deploy.state_dir) / "checkpoints" / checkpoint["id"]


async def node_events(deploy: Any, node: str) -> str:
    return "\n".join(e["message"] for e in await deploy.events(node=node))


async def refused(jp_fetch: Any, deploy: Any, node: str, reason: str) -> str:
    """Create `node` from the latest adder; wait for the event naming `reason`."""
    await call(jp_fetch, "nodes", method="POST", body={"name": node, "checkpoint": "adder"})

    async def told() -> bool:
        return reason in await node_events(deploy, node)

    await until(told, timeout=30, message=f"an event saying {reason!r}")
    assert deploy.node(node)["status"] != "Healthy"
    return await node_events(deploy, node)


async def test_state_swapped_for_a_payload_never_runs(jp_fetch, deploy, tmp_path):
    folder = await pinned(jp_fetch, deploy)
    marker = tmp_path / "payload-ran"
    (folder / "state.pkl").write_bytes(pickle.dumps(Payload(marker)))
    messages = await refused(jp_fetch, deploy, "swapped", "state.pkl does not match its "
                             "signed hash")
    assert "refused" in messages
    assert not marker.exists()
    assert not worker_pids(deploy.state_dir)


async def test_the_worker_itself_refuses_a_swapped_state(jp_fetch, deploy, tmp_path):
    """Whatever starts it, the instance checks before it unpickles: the worker run by hand
    against a signed checkpoint whose state was swapped afterwards."""
    from jupyter_deploy.signing import InstallationKey

    folder = await pinned(jp_fetch, deploy)
    marker = tmp_path / "payload-ran"
    (folder / "state.pkl").write_bytes(pickle.dumps(Payload(marker)))
    other = InstallationKey.open(tmp_path)  # another installation's key
    for key, told in [(deploy._checkpoints.key, "state.pkl does not match its signed hash"),
                      (other, "the manifest's signature does not verify")]:
        run = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "jupyter_deploy.worker", "--checkpoint",
                             str(folder), "--public-key", key.public_hex, "--port", "0"],
            capture_output=True, text=True, timeout=30)
        assert run.returncode == 4, run.stderr
        assert f"checkpoint refused: {told}" in run.stderr
    assert not marker.exists()


async def test_interpreter_swapped_in_checkpoint_json_is_refused(jp_fetch, deploy, tmp_path):
    folder = await pinned(jp_fetch, deploy)
    marker = tmp_path / "script-ran"
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta["environment"]["executable"] = str(script(tmp_path / "evil.sh", marker))
    (folder / "checkpoint.json").write_text(json.dumps(meta, indent=1))
    await refused(jp_fetch, deploy, "swapped",
                  "checkpoint.json was changed after the checkpoint was signed")
    assert not marker.exists()


async def test_a_pinned_interpreter_path_is_never_run(jp_fetch, deploy, tmp_path):
    """A kernel may record any path as its interpreter (it is only information): the
    instance runs the service's own interpreter, and the node serves."""
    marker = tmp_path / "script-ran"
    body = checkpoint_body("adder", **ADDER)
    body["environment"]["executable"] = str(script(tmp_path / "evil.sh", marker))
    await pinned(jp_fetch, deploy, body)
    await call(jp_fetch, "nodes", method="POST", body={"name": "plain", "checkpoint": "adder"})
    await until(lambda: deploy.node("plain")["status"] == "Healthy", timeout=30,
                message="the node to be Healthy")
    (instance,) = deploy.node("plain")["instances"]
    cmdline = await asyncio.to_thread(Path(f"/proc/{instance['pid']}/cmdline").read_bytes)
    command = cmdline.split(b"\0")
    assert command[0].decode() == sys.executable
    assert not marker.exists()


async def test_the_state_folder_and_its_keys_are_private(jp_fetch, deploy):
    from jupyter_deploy.worker.verify import verify

    folder = await pinned(jp_fetch, deploy)
    state_dir = Path(deploy.state_dir)
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    for name in ("signing.key", "signing.pub"):
        assert stat.S_IMODE(os.stat(state_dir / name).st_mode) == 0o600, name
    assert b"PRIVATE KEY" in (state_dir / "signing.key").read_bytes()
    public = bytes.fromhex((state_dir / "signing.pub").read_text())
    assert verify(folder, public)["name"] == "adder"
    assert not any(b"PRIVATE" in p.read_bytes() for p in folder.iterdir())


async def test_checkpoints_from_before_signing(jp_fetch, deploy, tmp_path):
    """At start, an unsigned checkpoint is signed when its files still hash to the content
    id the store recorded at pin time; one whose files changed is refused."""
    intact = await pinned(jp_fetch, deploy)
    changed = await pinned(jp_fetch, deploy,
                           checkpoint_body("other", **{**ADDER, "state": {"scale": 5.0}}))
    await deploy.stop()
    for folder in (intact, changed):
        for name in ("manifest.json", "manifest.sig"):
            (folder / name).unlink()
    marker = tmp_path / "payload-ran"
    (changed / "state.pkl").write_bytes(pickle.dumps(Payload(marker)))
    await deploy.start()
    signed = await deploy.events(checkpoint="adder")
    assert "checkpoint adder@1 signed" in signed[-1]["message"]
    (event,) = [e for e in await deploy.events(checkpoint="other") if e["action"] == "refused"]
    assert "do not hash to its content id" in event["message"], event
    await call(jp_fetch, "nodes", method="POST", body={"name": "old", "checkpoint": "adder"})
    await until(lambda: deploy.node("old")["status"] == "Healthy", timeout=30,
                message="the signed checkpoint's node to be Healthy")
    await call(jp_fetch, "nodes", method="POST", body={"name": "bad", "checkpoint": "other"})
    await until(lambda: deploy.node("bad")["status"] == "Unhealthy", timeout=30,
                message="the refused checkpoint's node to be Unhealthy")
    assert not marker.exists()


def test_interpreters_setting_is_checked(tmp_path):
    from jupyter_deploy.models import InvalidInput
    from jupyter_deploy.runtimes.interpreters import check_interpreters, choose

    good = script(tmp_path / "python-alt", tmp_path / "alt-ran")
    assert check_interpreters({"alt": str(good)}) == {"alt": str(good)}
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    for value, field in [({"alt": "python3"}, "interpreters.alt"),
                         ({"alt": str(tmp_path / "missing")}, "interpreters.alt"),
                         ({"alt": str(broken)}, "interpreters.alt"),
                         ({"Bad Name": str(good)}, "interpreters"), (["x"], "interpreters")]:
        with pytest.raises(InvalidInput) as info:
            check_interpreters(value)
        assert info.value.field == field, value
    configured = {"alt": str(good)}
    assert choose({"executable": str(good)}, configured) == str(good)
    assert choose({"executable": str(tmp_path / "other")}, configured) == sys.executable
    assert choose({"executable": 3}, configured) == sys.executable
    assert os.access(sys.executable, os.X_OK)
