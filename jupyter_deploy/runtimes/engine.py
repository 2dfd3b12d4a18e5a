"""The Docker engine as the docker runtime uses it: checks made before a node is created,
image pulls and checkpoint image builds, and container limits. Every function here blocks:
callers run them with `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import InvalidInput, Node, Unavailable
from . import images as checkpoint_image
from .limits import REGISTRY_PASSWORD, Limits, check_capacity, engine_capacity

ROOTLESS_USER = "10001:10001"


def connect(timeout_s: int = 60) -> Any:
    """A client of the engine the environment names (DOCKER_HOST, else the local socket)."""
    import docker

    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        raise Unavailable(f"no Docker engine answers ({exc}); start one, e.g. with "
                          "scripts/docker-engine.sh", field="runtime") from None
    return client


def python_of(client: Any, image: str) -> str:
    """The `X.Y` Python version of an image's python3."""
    output = client.containers.run(
        image, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        remove=True, network_mode="none", user=ROOTLESS_USER, entrypoint=[])
    return str(output.decode().strip())


def check_limits(client: Any, node: Node, limits: Limits) -> None:
    """Refuse limits the engine cannot apply, naming the setting."""
    info = client.info()
    check_capacity(node, limits, engine_capacity(info))
    if limits.gpus and "nvidia" not in (info.get("Runtimes") or {}):
        raise InvalidInput(f"the configuration asks for {limits.gpus} GPU(s) and the Docker "
                           "engine has none (no nvidia runtime)", field="config")
    if limits.disk_mb:
        backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "")
        if info.get("Driver") != "overlay2" or backing != "xfs":
            raise InvalidInput(f"disk_mb needs an engine whose storage can limit a container's "
                               f"disk (overlay2 on xfs with pquota); this one has "
                               f"{info.get('Driver')} on {backing or 'unknown'}", field="disk_mb")


def registry_auth(node: Node, secrets: dict[str, str]) -> dict[str, str] | None:
    if not node.registry:
        return None
    auth = {"username": node.registry["username"], "password": secrets[REGISTRY_PASSWORD]}
    if node.registry.get("server"):
        auth["serveraddress"] = node.registry["server"]
    return auth


def ensure_image(client: Any, image: str, auth: dict[str, str] | None,
                 progress: Callable[[str], None]) -> Any:
    """The image, pulled first when the engine does not have it."""
    import docker

    try:
        return client.images.get(image)
    except docker.errors.ImageNotFound:
        pass
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (
        image, "", "latest")
    progress(f"pulling {image}")
    try:
        for chunk in client.api.pull(repository, tag=tag, stream=True, decode=True,
                                     auth_config=auth):
            line, failed = checkpoint_image.progress_line(chunk)
            if failed:
                raise InvalidInput(f"cannot pull {image}: {failed}", field="image")
        return client.images.get(image)
    except docker.errors.APIError as exc:
        field = "registry" if exc.status_code in (401, 403) else "image"
        raise InvalidInput(f"cannot pull {image}: {exc.explanation or exc}", field=field) from None


def build_checkpoint_image(client: Any, checkpoint_dir: Path, base: str,
                           progress: Callable[[str], None], public_key: bytes = b"") -> str:
    """The checkpoint's image on `base`, built unless it is there already; its tag. The tag
    names `public_key`, the key its instances verify the snapshot with: the same checkpoint
    pinned in another state folder is signed with another key, and its image is another one."""
    import docker

    meta = json.loads((checkpoint_dir / "checkpoint.json").read_text())
    base_image = client.images.get(base)
    key_tag = hashlib.sha256(public_key).hexdigest()[:8] if public_key else ""
    tag = checkpoint_image.image_tag(meta["id"], base_image.id) + (
        f"-{key_tag}" if key_tag else "")
    try:
        client.images.get(tag)
        progress(f"image {tag} (cached)")
        return tag
    except docker.errors.ImageNotFound:
        pass
    progress(f"building image {tag} from {base}")
    with tempfile.TemporaryDirectory(prefix="jupyter-deploy-build-") as folder:
        checkpoint_image.write_context(Path(folder), checkpoint_dir, meta, base)
        labels = {"jupyter-deploy.checkpoint": meta["id"], "jupyter-deploy.base": base_image.id}
        for chunk in client.api.build(path=folder, tag=tag, rm=True, forcerm=True, decode=True,
                                      labels=labels, pull=False):
            line, failed = checkpoint_image.progress_line(chunk)
            if line:
                progress(line)
            if failed:
                raise RuntimeError(f"the image build failed: {failed}")
    progress(f"built image {tag}")
    return tag


def run(client: Any, image: str, options: dict[str, Any]) -> Any:
    """Create and start a container; one that cannot start is removed, not left behind."""
    container = client.containers.create(image, **options)
    try:
        container.start()
    except Exception:
        container.remove(force=True)
        raise
    return container


def user_of(image: Any) -> str:
    """The image's own user when it is not root, else an unprivileged one."""
    user = (image.attrs.get("Config") or {}).get("User") or ""
    return user if user and user.split(":")[0] not in ("root", "0") else ROOTLESS_USER


def limit_options(limits: Limits) -> dict[str, Any]:
    """Container options for an instance configuration."""
    import docker

    options: dict[str, Any] = {}
    if limits.cpus:
        options["nano_cpus"] = int(limits.cpus * 1e9)
    if limits.memory_mb:
        options["mem_limit"] = f"{limits.memory_mb}m"
        options["memswap_limit"] = f"{limits.memory_mb}m"  # no swap beyond the limit
    if limits.gpus:
        options["device_requests"] = [
            docker.types.DeviceRequest(count=limits.gpus, capabilities=[["gpu"]])]
    if limits.disk_mb:
        options["storage_opt"] = {"size": f"{limits.disk_mb}M"}
    return options
