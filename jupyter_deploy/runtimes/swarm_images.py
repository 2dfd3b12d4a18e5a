"""Images for the swarm runtime: a checkpoint's image is built on the engine where the service
runs, pushed to the configured registry and named by digest; an image node's image is pinned
to the digest its registry gives now, so every instance of a node runs the same bytes. Every
function here blocks: callers run them with `asyncio.to_thread` (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import InvalidInput, Unavailable
from . import engine
from . import images as checkpoint_image


def repository_of(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag defaults to latest."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, "latest"


def publish_checkpoint(local: Any, checkpoint_dir: Path, base: str, registry: str,
                       pull_registry: str, progress: Callable[[str], None],
                       public_key: bytes = b"") -> str:
    """Build the checkpoint's image on `local` (cached by checkpoint, base and signing key),
    push it to `registry`; the reference Swarm's nodes pull it by:
    `pull_registry/...@sha256:...`."""
    tag = engine.build_checkpoint_image(local, checkpoint_dir, base, progress, public_key)
    repository, version = repository_of(tag)
    remote = f"{registry}/{repository}"
    local.images.get(tag).tag(remote, version)
    progress(f"pushing {remote}:{version}")
    digest = ""
    for chunk in local.api.push(remote, tag=version, stream=True, decode=True):
        line, failed = checkpoint_image.progress_line(chunk)
        if failed:
            raise Unavailable(f"cannot push {remote}:{version} to {registry}: {failed}",
                              field="registry")
        digest = (chunk.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise Unavailable(f"the registry {registry} gave no digest for {remote}:{version}",
                          field="registry")
    progress(f"pushed {remote}@{digest}")
    return f"{pull_registry or registry}/{repository}@{digest}"


def pinned(manager: Any, image: str, auth: dict[str, str] | None) -> str:
    """`image` pinned to the digest its registry gives now (asked through the manager, with
    the node's credentials); refused with the reason when the registry does not know it."""
    import docker

    if "@sha256:" in image:
        return image
    try:
        data = manager.api.inspect_distribution(image, auth_config=auth)
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        # the engine answers 500 "no basic auth credentials" when the node gave none
        if exc.status_code in (401, 403) or "auth" in text.lower():
            raise InvalidInput(f"the registry of {image} refused the node's credentials "
                               f"({text}): set the node's registry username and password",
                               field="registry") from None
        raise InvalidInput(f"Swarm's manager cannot find {image} in its registry: {text}",
                           field="image") from None
    repository, _ = repository_of(image)
    return f"{repository}@{data['Descriptor']['digest']}"


def auth_header(auth: dict[str, str] | None) -> dict[str, str]:
    """The header that hands the node's registry credentials to Swarm's nodes with the
    service (what `docker service create --with-registry-auth` sends)."""
    if not auth:
        return {}
    from docker import auth as docker_auth

    return {"X-Registry-Auth": docker_auth.encode_header(auth).decode()}
