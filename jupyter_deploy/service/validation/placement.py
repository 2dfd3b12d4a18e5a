"""Checking the swarm runtime's node settings: where its instances may run (issue 14)."""

from __future__ import annotations

import re
from typing import Any

from ...models import InvalidInput

# Swarm's constraint form: node.id, node.hostname, node.role, node.platform.*, node.labels.*,
# engine.labels.*, each == or != a value.
CONSTRAINT = re.compile(r"(node|engine)\.[A-Za-z0-9_.-]{1,128}\s*(==|!=)\s*[^\s=!][^\s]{0,127}\Z")
MAX_CONSTRAINTS = 16
CONTAINER_RUNTIMES = ("docker", "swarm")  # the runtimes whose instances are containers


def check_placement(value: Any, runtime: str) -> list[str]:
    """`placement`: Swarm constraints such as `node.labels.zone==b`, all of which a Swarm
    node must meet to run the node's instances."""
    if runtime != "swarm":
        raise InvalidInput("placement needs the swarm runtime", field="placement")
    if not isinstance(value, list) or len(value) > MAX_CONSTRAINTS:
        raise InvalidInput(f"placement must be a list of at most {MAX_CONSTRAINTS} "
                           "constraints", field="placement")
    for index, constraint in enumerate(value):
        if not isinstance(constraint, str) or not CONSTRAINT.match(constraint.strip()):
            raise InvalidInput("a placement constraint is node.ATTRIBUTE==VALUE or !=, e.g. "
                               "node.labels.zone==b or node.role==worker",
                               field=f"placement[{index}]")
    return [constraint.strip() for constraint in value]


def runtime_of(body: dict[str, Any], default: str, known: tuple[str, ...]) -> str:
    """The runtime a new node asks for, else the service's default (an image node on the
    process default runs on docker: a process cannot run an image)."""
    runtime = body.get("runtime")
    if runtime is None:
        runtime = "docker" if "image" in body and default == "process" else default
    if runtime not in known:
        raise InvalidInput(f"runtime must be one of {', '.join(known)}", field="runtime")
    return str(runtime)
