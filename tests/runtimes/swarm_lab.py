"""The two-host Swarm lab (scripts/swarm-lab.sh) as the swarm tests and benchmark use it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("SWARM_LAB_DIR", "/var/lib/jupyter-deploy/swarm-lab"))
APP = Path(__file__).resolve().parent / "docker_app"
APP_IMAGE = "jupyter-deploy-test-app:swarm"


def lab() -> dict[str, str] | str:
    """The lab's settings, or why there is none."""
    settings = LAB_DIR / "lab.env"
    if not settings.exists():
        return (f"the swarm lab is not up ({settings} is missing): run `scripts/swarm-lab.sh "
                "up` as root where `ip netns` works (make test does)")
    values = dict(line.split("=", 1) for line in settings.read_text().splitlines() if "=" in line)
    try:
        import docker

        docker.DockerClient(base_url=values["SWARM_LAB_MANAGER"], timeout=10).ping()
        docker.from_env(timeout=30).ping()
    except Exception as exc:  # noqa: BLE001 - told to the user as it is
        return f"the swarm lab or the local engine does not answer: {exc}"
    return values


def options(values: dict[str, str]) -> list[str]:
    """`jupyter deploy serve` options of a service on the lab's Swarm."""
    return [f"--DeployApp.swarm_manager={values['SWARM_LAB_MANAGER']}",
            f"--DeployApp.registry={values['SWARM_LAB_REGISTRY']}",
            f"--DeployApp.registry_pull={values['SWARM_LAB_REGISTRY_PULL']}"]


def credentials(values: dict[str, str]) -> dict[str, str]:
    """A node's `registry` setting for the lab's registry that wants a password."""
    return {"server": values["SWARM_LAB_PRIVATE_PULL"],
            "username": values["SWARM_LAB_PRIVATE_USER"],
            "password": values["SWARM_LAB_PRIVATE_PASSWORD"]}


def push_app(values: dict[str, str]) -> str:
    """The tests' HTTP app, built on the local engine and pushed to the lab's registry that
    wants a password; the reference Swarm's nodes pull it by (with the password)."""
    import docker

    local = docker.from_env()
    local.images.build(path=str(APP), buildargs={"BASE": "jupyter-deploy-base:bookworm"},
                       rm=True, tag=APP_IMAGE)
    repository, tag = APP_IMAGE.split(":")
    remote = f"{values['SWARM_LAB_PRIVATE_REGISTRY']}/{repository}"
    local.images.get(APP_IMAGE).tag(remote, tag)
    auth = {"username": values["SWARM_LAB_PRIVATE_USER"],
            "password": values["SWARM_LAB_PRIVATE_PASSWORD"]}
    for chunk in local.api.push(remote, tag=tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in chunk, chunk
    return f"{values['SWARM_LAB_PRIVATE_PULL']}/{APP_IMAGE}"


def remove_app(values: dict[str, str]) -> None:
    """The tags `push_app` made on the local engine."""
    import docker

    local = docker.from_env()
    for tag in (APP_IMAGE, f"{values['SWARM_LAB_PRIVATE_REGISTRY']}/{APP_IMAGE}"):
        local.images.remove(tag)


def remove_images(state_dir: Path) -> None:
    """The checkpoint images a service of `state_dir` built and pushed (their tags end with
    its key's tag: see runtimes/swarm_images.py), from the local engine."""
    import hashlib

    import docker

    key = bytes.fromhex((state_dir / "signing.pub").read_text().strip())
    suffix = f"-{hashlib.sha256(key).hexdigest()[:8]}"
    local = docker.from_env()
    for image in local.images.list():
        for tag in image.tags:
            if "jupyter-deploy-checkpoint:" in tag and tag.endswith(suffix):
                local.images.remove(tag)


def manager(values: dict[str, str]) -> Any:
    import docker

    return docker.DockerClient(base_url=values["SWARM_LAB_MANAGER"], timeout=30)


def services(values: dict[str, str], node: str) -> list[dict[str, Any]]:
    """The Swarm services of a node's instances."""
    found: list[dict[str, Any]] = manager(values).api.services(
        filters={"label": f"jupyter-deploy.node={node}"})
    return found


def worker_pid(values: dict[str, str]) -> int:
    return int(Path(values["SWARM_LAB_WORKER_PID"]).read_text())


def lab_script(verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / "swarm-lab.sh"), verb], capture_output=True,
                          text=True)
