"""`node create` and `node update` wait on the event stream and exit non-zero unless the node
ends `Healthy` (issue 15, item 4), as a user runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conftest import checkpoint_body
from ..runtimes.test_docker import BASE, engine  # noqa: F401 - the Docker engine fixture
from .test_cli import jupyter_deploy

# A model whose weights are read again when its state is restored: the file is there when the
# cell is pinned and gone when an instance starts, so every instance fails at start.
MODEL = (
    "class Model:\n"
    "    def __init__(self, path):\n"
    "        self.path = path\n"
    "        self.scale = int(open(path).read())\n"
    "    def __setstate__(self, state):\n"
    "        self.__dict__.update(state)\n"
    "        self.scale = int(open(self.path).read())\n"
)


def fragile_checkpoint(name: str, tmp_path: Path) -> dict[str, Any]:
    """A checkpoint whose instances fail at start (FileNotFoundError when restored)."""
    weights = tmp_path / f"{name}-weights.txt"
    weights.write_text("3")
    state: dict[str, Any] = {}
    exec(MODEL + f"model = Model({str(weights)!r})\n", state)
    body = checkpoint_body(name, "y = x * model.scale", "x:int", "y",
                           state={"model": state["model"]}, x=1)
    weights.unlink()
    return body


def forget(service, *nodes: str) -> None:
    for name in nodes:
        if any(node["name"] == name for node in service.client.nodes()):
            service.client.delete_node(name)


def test_create_of_a_node_that_fails_at_start_exits_non_zero(service, tmp_path):
    service.client.add_checkpoint(fragile_checkpoint("broken", tmp_path))
    try:
        done = jupyter_deploy("node", "create", "broken-node", "--checkpoint", "broken",
                              env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "key:      jd_" in done.stdout  # the node exists: its key is shown once
        assert "node broken-node is Unhealthy" in done.stderr
        assert "the instance exited (code 3)" in done.stderr  # the last events
        assert "FileNotFoundError: [Errno 2] No such file or directory" in done.stderr  # its log
    finally:
        forget(service, "broken-node")


def test_create_that_times_out_exits_non_zero(service, tmp_path):
    service.client.add_checkpoint(checkpoint_body("slowpoke", "y = x", "x:int", "y", x=1))
    try:
        done = jupyter_deploy("node", "create", "slowpoke-node", "--checkpoint", "slowpoke",
                              "--timeout", "0", env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "node slowpoke-node is Created after 0 s" in done.stderr
        assert "--timeout" in done.stderr  # what to change
    finally:
        forget(service, "slowpoke-node")


def test_strict_create_with_a_failed_replay_exits_non_zero(service, tmp_path):
    service.client.add_checkpoint(checkpoint_body(
        "drifter", "seen = x * calls\ncalls = calls + 1", "x:int", "seen",
        state={"calls": 1}, x=5))
    try:
        done = jupyter_deploy("node", "create", "drifter-node", "--checkpoint", "drifter",
                              "--strict", env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the replay check failed" in done.stderr
        assert "output.seen: notebook 5, node 10" in done.stderr
    finally:
        forget(service, "drifter-node")


def test_update_waits_for_the_roll_and_shows_the_new_state(service, tmp_path):
    node, _ = service.create_node("roller", checkpoint_body("roller", "y = x", "x:int", "y", x=1),
                                  min=3)
    old = {instance["id"] for instance in node["instances"]}
    try:
        done = jupyter_deploy("node", "update", "roller", "--env", "COLOUR=blue",
                              env=service.env, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("roller: Healthy (instances 3..3")
        now = {instance["id"] for instance in service.client.node("roller")["instances"]}
        assert len(now) == 3 and not now & old  # every instance rolled
        assert all(name in done.stdout for name in now)
        assert not any(name in done.stdout for name in old)
    finally:
        forget(service, "roller")


def test_update_to_a_checkpoint_that_fails_exits_non_zero(service, tmp_path):
    node, _ = service.create_node("steady", checkpoint_body("steady", "y = x", "x:int", "y", x=1))
    service.client.add_checkpoint(fragile_checkpoint("steady", tmp_path))
    try:
        done = jupyter_deploy("node", "update", "steady", "--checkpoint", "steady@2",
                              "--timeout", "6", env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "node steady did not roll to steady@2" in done.stderr
        assert "FileNotFoundError" in done.stderr
        # the old instance serves on: the roll never takes a working node out of service
        assert service.client.node("steady")["status"] == "Healthy"
    finally:
        forget(service, "steady")


def test_create_of_a_docker_node_that_ends_unhealthy_exits_non_zero(service, engine, tmp_path):  # noqa: F811
    """The base image's command exits at once: every container stops before it serves."""
    try:
        done = jupyter_deploy("node", "create", "quitter", "--image", BASE, "--port", "8080",
                              env=service.env, cwd=tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "node quitter is Unhealthy" in done.stderr
        assert "the instance exited (code 0)" in done.stderr
        assert "container " in done.stderr  # the runtime's own events
    finally:
        forget(service, "quitter")
