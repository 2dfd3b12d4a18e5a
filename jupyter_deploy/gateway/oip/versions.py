"""Which checkpoint version each instance of a node serves: the OIP model versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Served


def served_from(nodes: Callable[[], dict[str, Any]],
                instances: Callable[[str], dict[str, Any]],
                meta: Callable[[str], dict[str, Any]],
                versions_of: Callable[[str], list[dict[str, Any]]]) -> Served:
    """`Models.served` over the supervisor's nodes and instances and the stored checkpoints.

    An instance of the node's checkpoint serves the node's version; one left from before an
    update (a roll) serves the latest version pinned with its content before that.
    """
    known: dict[tuple[str, str], dict[str, Any]] = {}

    def version(name: str, checkpoint_id: str, current: int) -> str:
        found = [c["version"] for c in versions_of(name)
                 if c["id"] == checkpoint_id and c["version"] <= current]
        return str(max(found)) if found else ""

    def served(node_name: str) -> dict[str, dict[str, Any]]:
        node = nodes().get(node_name)
        if node is None or node.from_image:
            return {}
        name, _, current = node.checkpoint.partition("@")
        out = {}
        for instance in list(instances(node_name).values()):
            key = (instance.checkpoint_id, current)
            entry = known.get(key)
            if entry is None:
                number = current if instance.checkpoint_id == node.checkpoint_id else version(
                    name, instance.checkpoint_id, int(current or 0))
                if len(known) > 1024:
                    known.clear()
                entry = known[key] = {**meta(instance.checkpoint_id), "version": number}
            out[instance.id] = entry
        return out

    return served
