"""A checkpoint image carries the signed manifest and the public key: its worker verifies the
snapshot at every start, so an image whose snapshot was changed never serves (real engine)."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.runtimes import engine as runtime_engine
from jupyter_deploy.service.checkpoints import Checkpoints
from jupyter_deploy.service.observe import EventLog
from jupyter_deploy.store.sqlite import Store

from ..conftest import checkpoint_body, wait_for
from ..control.test_api import ADDER
from ..service.test_signing import Payload
from . import test_docker

engine = test_docker.engine  # the module's engine fixture, shared
BASE = test_docker.BASE
ROOT = "/opt/jupyter-deploy"
MARKER = "/tmp/payload-ran"


@pytest.fixture
def checkpoint_image(engine: Any, tmp_path: Path) -> Iterator[str]:
    """A signed checkpoint pinned into a store, built into its image the runtime's way."""
    store = Store(tmp_path / "state")
    try:
        checkpoints = Checkpoints(store, EventLog(store))
        pinned = asyncio.run(checkpoints.add(checkpoint_body("adder", **ADDER)))
        tag = runtime_engine.build_checkpoint_image(
            engine, store.checkpoint_dir(pinned["id"]), BASE, lambda line: None)
    finally:
        store.close()
    yield tag
    engine.images.remove(tag, force=True)


def run_worker(client: Any, image: str) -> Any:
    """Start the image's worker (no network); the container once it has ended or restored."""
    container = client.containers.run(image, command=["--port", "8080"], detach=True,
                                      network_mode="none")
    wait_for(lambda: container.reload() or container.status == "exited"
             or b"restored adder" in container.logs(), timeout=60,
             message="the worker to restore or exit")
    return container


def left_behind(engine: Any, node: str) -> None:
    """A deleted node leaves no container once the service has stopped, not even the exited
    ones of its refused instances."""
    wait_for(lambda: not engine.containers.list(
        all=True, filters={"label": f"jupyter-deploy.node={node}"}), timeout=30,
        message=f"the containers of node {node} to be removed")


def genuine_healthy(service: Any) -> None:
    """Wait for node `genuine` (its image built first, a minute or two) to be Healthy; say
    what its events said when it is not."""
    try:
        wait_for(lambda: service.client.node("genuine")["status"] == "Healthy", timeout=240,
                 message="the genuine docker node to be Healthy")
    except AssertionError as exc:
        said = [e["message"] for e in service.client.events(node="genuine")][-12:]
        raise AssertionError(f"{exc}; its last events: {said}") from None


def test_an_image_whose_snapshot_changed_is_refused(engine, checkpoint_image, tmp_path):
    import docker

    genuine = run_worker(engine, checkpoint_image)
    try:
        assert b"restored adder" in genuine.logs(), genuine.logs().decode()
    finally:
        genuine.remove(force=True)
    context = tmp_path / "tampered"
    context.mkdir()
    (context / "state.pkl").write_bytes(pickle.dumps(Payload(Path(MARKER))))
    (context / "state.pkl").chmod(0o644)
    (context / "Dockerfile").write_text(
        f"FROM {checkpoint_image}\nCOPY state.pkl {ROOT}/checkpoint/state.pkl\n")
    tampered, _ = engine.images.build(path=str(context), rm=True, pull=False,
                                      tag="jupyter-deploy-test-tampered:latest")
    try:
        container = run_worker(engine, tampered.id)
        try:
            logs = container.logs().decode()
            assert container.attrs["State"]["ExitCode"] == 4, logs
            assert "checkpoint refused: state.pkl does not match its signed hash" in logs
            with pytest.raises(docker.errors.NotFound):
                container.get_archive(MARKER)
        finally:
            container.remove(force=True)
    finally:
        engine.images.remove(tampered.id, force=True)


def test_a_node_from_a_changed_image_says_why(engine, tmp_path):
    """The service's own path: the cached image of a checkpoint is swapped for one whose
    snapshot changed; a node from it never gets Healthy, and its events name the reason."""
    import docker

    from ..conftest import standalone

    with standalone(tmp_path) as service:
        service.client.add_checkpoint(checkpoint_body("adder", **ADDER))
        service.client.create_node({"name": "genuine", "checkpoint": "adder",
                                    "runtime": "docker"})
        genuine_healthy(service)
        (image,) = {c.image for c in engine.containers.list(
            filters={"label": "jupyter-deploy.node=genuine"})}
        tag = image.tags[0]
        service.client.delete_node("genuine")
        context = tmp_path / "tampered"
        context.mkdir()
        (context / "state.pkl").write_bytes(pickle.dumps(Payload(Path(MARKER))))
        (context / "state.pkl").chmod(0o644)
        (context / "Dockerfile").write_text(f"FROM {tag}\nCOPY state.pkl {ROOT}/checkpoint/\n")
        try:
            engine.images.build(path=str(context), rm=True, pull=False, tag=tag)
            service.client.create_node({"name": "changed", "checkpoint": "adder",
                                        "runtime": "docker"})

            def told() -> bool:
                events = service.client.events(node="changed")
                return any("checkpoint refused: state.pkl does not match its signed hash"
                           in e["message"] for e in events)
            wait_for(told, timeout=60, message="an event naming the refusal")
            assert service.client.node("changed")["status"] != "Healthy"
            service.client.delete_node("changed")
        finally:
            for name in (tag, image.id):  # the genuine one goes with the changed one, untagged
                with contextlib.suppress(docker.errors.ImageNotFound):
                    engine.images.remove(name, force=True)
    left_behind(engine, "changed")


def test_an_image_signed_with_its_own_key_is_refused(engine, tmp_path):
    """An image rebuilt whole, its snapshot re-signed with another key and that key put in its
    place: the service gives the container its own key, so the node still never serves."""
    import json
    import shutil

    import docker

    from jupyter_deploy.signing import InstallationKey, content_id

    from ..conftest import standalone

    with standalone(tmp_path) as service:
        service.client.add_checkpoint(checkpoint_body("adder", **ADDER))
        service.client.create_node({"name": "genuine", "checkpoint": "adder",
                                    "runtime": "docker"})
        genuine_healthy(service)
        (image,) = {c.image for c in engine.containers.list(
            filters={"label": "jupyter-deploy.node=genuine"})}
        tag = image.tags[0]
        service.client.delete_node("genuine")
        (pinned,) = (tmp_path / "state" / "checkpoints").iterdir()
        context = tmp_path / "forged"
        folder = context / "checkpoint"
        shutil.copytree(pinned, folder)
        (folder / "state.pkl").write_bytes(pickle.dumps(Payload(Path(MARKER))))
        meta = json.loads((folder / "checkpoint.json").read_text())
        spec = {key: meta.get(key) for key in ("source", "inputs", "outputs", "environment")}
        meta["id"] = content_id(spec, folder / "state.pkl")
        (folder / "checkpoint.json").write_text(json.dumps(meta))
        (tmp_path / "attacker").mkdir()
        attacker = InstallationKey.open(tmp_path / "attacker")
        attacker.sign(folder, meta["id"])
        (context / "public.key").write_text(attacker.public_hex + "\n")
        for path in (*folder.iterdir(), context / "public.key"):
            path.chmod(0o644)
        (context / "Dockerfile").write_text(
            f"FROM {tag}\nCOPY checkpoint {ROOT}/checkpoint\nCOPY public.key {ROOT}/public.key\n")
        try:
            engine.images.build(path=str(context), rm=True, pull=False, tag=tag)
            service.client.create_node({"name": "forged", "checkpoint": "adder",
                                        "runtime": "docker"})

            def told() -> bool:
                events = service.client.events(node="forged")
                return any("checkpoint refused" in e["message"] for e in events)
            wait_for(told, timeout=60, message="an event naming the refusal")
            assert service.client.node("forged")["status"] != "Healthy"
            service.client.delete_node("forged")
        finally:
            for name in (tag, image.id):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    engine.images.remove(name, force=True)
    left_behind(engine, "forged")
