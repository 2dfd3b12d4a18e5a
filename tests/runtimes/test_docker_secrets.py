"""Containers under issue 12: secrets as files in /run/secrets (0400, the container's user),
kept out of `docker inspect`; the default memory limit applies to containers too."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.client import ClientError

from ..conftest import Service, standalone, wait_for
from .test_docker import (  # noqa: F401 - fixtures
    BASE,
    FAST_HEALTH,
    app_image,
    containers,
    engine,
    gateway,
    image_node,
)

HOG = Path(__file__).resolve().parent / "docker_hog"

TLS_KEY = "-----BEGIN KEY-----\nk3y-7c1d9e\n-----END KEY-----\n"
PASSWORD = "pw-5e4d3c2b1a"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with standalone(tmp_path_factory.mktemp("docker-secrets"),
                    "--DeployApp.default_memory_mb=300",
                    "--DeployApp.keep_containers=False") as running:
        yield running


def test_secret_files_are_0400_files_of_the_user_and_not_in_inspect(
        limited: Service, engine: Any, app_image: Any) -> None:  # noqa: F811
    try:
        _check_vault(limited, engine)
    finally:
        with contextlib.suppress(ClientError):  # made only if the command got that far
            limited.client.delete_node("vault")


def _check_vault(limited: Service, client: Any) -> None:
    made = subprocess.run(  # as a user types it
        [sys.executable, "-m", "jupyter_deploy.cli", "node", "create", "vault", "--image",
         "jupyter-deploy-test-app:latest", "--port", "8080", "--health-path", "/healthz",
         "--runtime", "docker", "--secret", f"DB_PASSWORD={PASSWORD}",
         "--secret-file", f"tls.key={TLS_KEY}"], env=limited.kernel_env, capture_output=True,
        text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    wait_for(lambda: limited.client.node("vault")["status"] == "Healthy", timeout=60,
             message="the node to be Healthy")
    [container] = containers(client, "vault")
    user = container.attrs["Config"]["User"]
    listing = container.exec_run(["stat", "-c", "%a %u:%g %n", "/run/secrets/tls.key"])
    assert listing.exit_code == 0, listing.output
    mode, owner, _ = listing.output.decode().split()
    assert mode == "400" and owner == user, (listing.output, user)
    read = container.exec_run(["cat", "/run/secrets/tls.key"], user=user)
    assert read.output.decode() == TLS_KEY
    inspected = json.dumps(client.api.inspect_container(container.id))
    assert TLS_KEY.splitlines()[1] not in inspected  # the file secret is not shown
    assert PASSWORD in inspected  # an environment secret is: the difference to document
    assert "file:tls.key" in limited.client.node("vault")["secrets"]  # names only
    assert TLS_KEY.splitlines()[1] not in json.dumps(limited.client.node("vault"))


def test_the_default_memory_limit_applies_to_containers(
        limited: Service, engine: Any, app_image: Any) -> None:  # noqa: F811
    image_node(limited, "bounded", runtime="docker")
    try:
        [container] = containers(engine, "bounded")
        assert container.attrs["HostConfig"]["Memory"] == 300 << 20
    finally:
        limited.client.delete_node("bounded")


@pytest.fixture(scope="module")
def hog_image(engine: Any) -> Iterator[Any]:  # noqa: F811
    """An image of its own (not the shared test app's tag) that grows on POST /hog."""
    image, _ = engine.images.build(path=str(HOG), buildargs={"BASE": BASE}, rm=True,
                                   tag="jupyter-deploy-test-hog:limits")
    yield image
    engine.images.remove(image.id, force=True)


def test_a_container_over_its_limit_is_told_and_replaced(
        limited: Service, engine: Any, hog_image: Any) -> None:  # noqa: F811
    created = limited.client.create_node({
        "name": "glutton", "image": "jupyter-deploy-test-hog:limits", "port": 8080,
        "runtime": "docker", "health": {"path": "/healthz", **FAST_HEALTH}})
    try:
        wait_for(lambda: limited.client.node("glutton")["status"] == "Healthy", timeout=60,
                 message="the node to be Healthy")
        [first] = containers(engine, "glutton")
        gateway(limited.gateway_url, "/v1/nodes/glutton/hog", created["key"], method="POST",
                body=b"{}", headers={"x-node-id": "glutton"})
        wait_for(lambda: any("memory limit of 300 MB" in (e.get("message") or "")
                             for e in limited.client.events("glutton")), timeout=30,
                 message="an event naming the limit")
        wait_for(lambda: limited.client.node("glutton")["status"] == "Healthy" and
                 [c.id for c in containers(engine, "glutton")] not in ([], [first.id]),
                 timeout=60, message="a new container")
    finally:
        limited.client.delete_node("glutton")


def test_a_bad_secret_file_is_refused_with_its_field(limited: Service) -> None:
    for files, field in (({"../etc": "x"}, "secret_files.../etc"),
                         ({"k": "x" * (64 * 1024 + 1)}, "secret_files.k"),
                         ([], "secret_files")):
        with pytest.raises(ClientError) as caught:
            limited.client.create_node({"name": "bad", "image": "jupyter-deploy-test-app:latest",
                                        "port": 8080, "runtime": "docker",
                                        "secret_files": files})
        assert caught.value.status == 422, caught.value
        assert caught.value.body["error"]["field"] == field, caught.value.body
