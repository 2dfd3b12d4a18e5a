"""Checking the settings of nodes that run in containers, and instance configurations.

A Docker-image node has an `image` and a `port` instead of a checkpoint; every node may name
an instance configuration (CPU, memory, GPUs). Secrets and the registry password are
write-only: they are returned apart, to be stored away from the node's record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Any

from ...models import InvalidInput, Node
from ...runtimes.limits import REGISTRY_PASSWORD, check_capacity, host_capacity, limits
from ...runtimes.secretfiles import FILE_NAME, FILE_PREFIX, MAX_FILE_BYTES
from .names import check_variables
from .names import is_whole as _whole
from .placement import CONTAINER_RUNTIMES, check_placement
from .ranges import in_range

IMAGE_FIELDS = {"image", "port", "protocol", "telemetry", "registry", "session_timeout_s",
                "idle_timeout_s"}
DOCKER_FIELDS = {"base_image", "network", "disk_mb", "secret_files"}
CONTAINER_FIELDS = IMAGE_FIELDS | DOCKER_FIELDS | {"config", "memory_mb", "secrets", "placement"}
HEALTH_TEXT = {"protocol", "path", "port"}
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")

def container_settings(node: Node, body: dict[str, Any], configs: dict[str, dict[str, Any]],
                       creating: bool, stored: dict[str, str] | None = None
                       ) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Check what `body` holds of the container settings; (the node fields to set, the
    secrets to store or None when they do not change). `stored`: the node's secrets now.
    Nothing is set on `node` here."""
    changes: dict[str, Any] = {}
    docker = node.runtime in CONTAINER_RUNTIMES
    for name in sorted(set(body) & (IMAGE_FIELDS - {"image"})):
        if not node.from_image:
            raise InvalidInput(f"{name} is a setting of Docker-image nodes (--image)", field=name)
    for name in sorted(set(body) & DOCKER_FIELDS):
        if not docker:
            raise InvalidInput(f"{name} needs the docker runtime", field=name)
    if "image" in body and not creating:
        raise InvalidInput("image cannot be changed on a node: create a new one", field="image")
    if node.from_image:
        port = body.get("port", node.port or None)
        changes["port"] = _port(port, "port", required=True)
        changes["protocol"] = _choice(body, "protocol", node.protocol, ("http", "grpc"))
        if "telemetry" in body:
            changes["telemetry"] = _telemetry(body["telemetry"])
        for name in ("session_timeout_s", "idle_timeout_s"):
            if name in body:
                changes[name] = in_range(body[name], name)
    if "base_image" in body:
        if node.from_image:
            raise InvalidInput("base_image is for checkpoint nodes: an image node has its "
                               "image", field="base_image")
        changes["base_image"] = _image(body["base_image"], "base_image", allow_empty=True)
    if "placement" in body:
        changes["placement"] = check_placement(body["placement"], node.runtime)
    if "network" in body and node.runtime == "swarm":
        raise InvalidInput("network is a docker runtime setting: a swarm instance publishes "
                           "its ports in host mode on its Swarm node", field="network")
    if "network" in body:
        changes["network"] = _choice(body, "network", node.network, ("host", "bridge"))
    if "config" in body:
        config = body["config"]
        if config not in ("", None) and (not isinstance(config, str) or config not in configs):
            raise InvalidInput(f"config must be one of {', '.join(sorted(configs))} (the "
                               "service's instance configurations)", field="config")
        changes["config"] = config or ""
    for name in ("memory_mb", "disk_mb"):
        if name in body:
            changes[name] = in_range(body[name], name)
    if node.runtime == "process" and {"config", "memory_mb"} & set(changes):
        _fits_the_host(node, changes, configs)
    if "health" in body and isinstance(body["health"], dict):
        changes.update(_health(node, body["health"]))
    if body.get("protocol") == "grpc" and "health.protocol" not in changes:
        changes["health.protocol"] = "grpc"  # an HTTP probe of a gRPC port can only fail
    secrets = None
    if {"secrets", "secret_files", "registry"} & set(body):
        secrets = _secrets(body, stored or {}, changes)
    return changes, secrets


def _fits_the_host(node: Node, changes: dict[str, Any], configs: dict[str, dict[str, Any]]
                   ) -> None:
    """A process instance runs on this host: refuse CPUs or memory it does not have (the
    docker runtime checks against its engine before a node is created; issue 15, item 10)."""
    wanted = replace(node, **{k: v for k, v in changes.items() if k in ("config", "memory_mb")})
    check_capacity(wanted, limits(wanted, configs), host_capacity())


def health_numbers(body: dict[str, Any]) -> dict[str, Any]:
    """The numeric health settings of `body` (the others are checked here)."""
    health = body.get("health", {})
    if not isinstance(health, dict):
        return health
    return {k: v for k, v in health.items() if k not in HEALTH_TEXT}


def _health(node: Node, health: dict[str, Any]) -> dict[str, Any]:
    text = {k: health[k] for k in HEALTH_TEXT & set(health)}
    if text and not node.from_image:
        field = f"health.{sorted(text)[0]}"
        raise InvalidInput(f"{field} is a setting of Docker-image nodes: a checkpoint node is "
                           "checked on its own readiness endpoint", field=field)
    changes: dict[str, Any] = {}
    if "protocol" in text:
        changes["health.protocol"] = _choice(text, "protocol", "http", ("http", "grpc"),
                                             prefix="health.")
    if "path" in text:
        path = text["path"]
        if not isinstance(path, str) or not path.startswith("/") or any(
                c.isspace() for c in path):
            raise InvalidInput("health.path must be a path starting with /",
                               field="health.path")
        changes["health.path"] = path
    if "port" in text:
        changes["health.port"] = _port(text["port"], "health.port") or 0
    return changes


def _secrets(body: dict[str, Any], stored: dict[str, str], changes: dict[str, Any]
             ) -> dict[str, str]:
    """The node's secrets as they will be stored: environment secrets and registry password.
    `secrets` replaces the environment secrets, `registry` the password; the rest stays."""
    def replaced(name: str) -> str:  # the body field that replaces a stored secret
        return "registry" if name == REGISTRY_PASSWORD else \
            "secret_files" if name.startswith(FILE_PREFIX) else "secrets"
    values = {k: v for k, v in stored.items() if replaced(k) not in body}
    values.update(check_variables(body.get("secrets", {}), "secrets"))
    values.update({FILE_PREFIX + k: v for k, v in _secret_files(body).items()})
    changes["secrets"] = sorted(k for k in values if k != REGISTRY_PASSWORD)
    registry = body.get("registry")
    if registry is not None:
        if not isinstance(registry, dict) or set(registry) - {"server", "username", "password"} \
                or not all(isinstance(v, str) and v for v in registry.values()) or \
                {"username", "password"} - set(registry):
            raise InvalidInput('registry must be {"username", "password"[, "server"]}, strings',
                               field="registry")
        values[REGISTRY_PASSWORD] = registry["password"]
        changes["registry"] = {k: v for k, v in registry.items() if k != "password"}
    elif "registry" in body:
        changes["registry"] = None
    changes["secrets_digest"] = hashlib.sha256(
        json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    return values


def _secret_files(body: dict[str, Any]) -> dict[str, str]:
    """`secret_files`: {FILE_NAME: text}, each under 64 KB (files in /run/secrets)."""
    files = body.get("secret_files", {})
    if not isinstance(files, dict):
        raise InvalidInput("secret_files must be an object of file names to their contents",
                           field="secret_files")
    for name, value in files.items():
        field = f"secret_files.{name}"
        if not isinstance(name, str) or not FILE_NAME.match(name):
            raise InvalidInput("a secret file name is 1-64 letters, digits, '.', '_' or '-', "
                               "not starting with '.' or '-'", field=field)
        if not isinstance(value, str) or len(value.encode()) > MAX_FILE_BYTES:
            raise InvalidInput(f"{field} must be text of at most {MAX_FILE_BYTES} bytes",
                               field=field)
    return dict(files)


def apply(node: Node, changes: dict[str, Any]) -> None:
    """Set checked changes on the node (`health.X` on its health check)."""
    for name, value in changes.items():
        if name.startswith("health."):
            setattr(node.health, name.split(".", 1)[1], value)
        else:
            setattr(node, name, value)


def _image(value: Any, field: str, allow_empty: bool = False) -> str:
    if allow_empty and value in ("", None):
        return ""
    if not isinstance(value, str) or not IMAGE_RE.match(value):
        raise InvalidInput(f"{field} must be an image reference such as "
                           "python:3.11-slim or registry.example.com/team/app:1.2", field=field)
    return value


def check_image(value: Any) -> str:
    return _image(value, "image")


def _port(value: Any, field: str, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if not _whole(value) or not 1 <= value <= 65535:
        raise InvalidInput(f"{field} must be a port number from 1 to 65535", field=field)
    return value


def _telemetry(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"path", "port"}:
        raise InvalidInput('telemetry must be {"path": "/metrics", "port": PORT}',
                           field="telemetry")
    path = value.get("path", "/metrics")
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInput("telemetry.path must start with /", field="telemetry.path")
    port = value.get("port")
    if port == 0 and not isinstance(port, bool):  # 0, as stored and as the CLI sends it
        port = None
    # no port (or 0): the node's own port, as the README shows it (issue 15, item 5)
    return {"path": path, "port": _port(port, "telemetry.port") or 0}


def _choice(body: dict[str, Any], name: str, default: str, allowed: tuple[str, ...],
            prefix: str = "") -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise InvalidInput(f"{prefix}{name} must be one of {', '.join(allowed)}",
                           field=prefix + name)
    return value

