"""Aliases: stable public names, re-pointed at nodes by weight in one step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..gateway.app import Gateway
from ..gateway.routing import Routes, hash_key, new_key
from ..models import Alias, Conflict, NodeStatus, NotFound
from ..store.sqlite import Store
from ..supervisor.loop import Supervisor
from .observe import EventLog
from .validation.aliases import alias_settings
from .validation.names import body_object


@dataclass
class AliasSet:
    """What setting an alias gives back."""

    alias: dict[str, Any]
    key: str | None  # the new alias's key, shown only here; None when public or kept
    created: bool
    warnings: list[str] = field(default_factory=list)  # what changed besides what was asked


class Aliases:
    """The alias verbs of the control API; every change is an event and reaches the routes
    whole."""

    def __init__(self, store: Store, supervisor: Supervisor, routes: Routes, gateway: Gateway,
                 events: EventLog, gateway_url: Callable[[], str]) -> None:
        self.store = store
        self.supervisor = supervisor
        self.routes = routes
        self.gateway = gateway
        self.events = events
        self.gateway_url = gateway_url

    def route_all(self) -> None:
        """Give the routes every stored alias (at start)."""
        for alias in self.store.aliases():
            self._route(alias)

    def _route(self, alias: Alias) -> None:
        self.routes.set_alias(alias.name, alias.key_hash, alias.public, alias.nodes,
                              alias.shadow, alias.sticky)

    def put(self, name: Any, body: Any, create_only: bool = False,
            key: str | None = None) -> AliasSet:
        """Create or re-point an alias in one step; `key`: its internal key, when it is not
        `name` (an alias of a project other than `default`)."""
        body = {**body_object(body), "name": name}
        previous = self._stored().get(key or name)
        if previous is not None and create_only:
            raise Conflict(f"alias {name!r} exists already: PUT /aliases/{name} re-points it",
                           field="name")
        alias, warnings = alias_settings(body, self.supervisor.nodes, self._serving(), previous)
        alias.name = key or alias.name
        key = None
        if not alias.public and not alias.key_hash:
            key = new_key()
            alias.key_hash = hash_key(key)
        self.store.save_alias(alias)
        self._route(alias)
        action = "created" if previous is None else "updated"
        routing = " ".join(f"{node}={weight}" for node, weight in alias.nodes.items())
        message = f"alias {alias.name} {action}: {routing}"
        if alias.shadow:
            message += f" (shadow {alias.shadow['node']} {alias.shadow['percent']:g}%)"
        self.events.add("alias", alias.name, action, "; ".join([message, *warnings]))
        return AliasSet(self._json(alias), key, previous is None, warnings)

    def _serving(self) -> set[str]:
        """Nodes that are Healthy, not suspended, with an instance in balancing."""
        statuses = self.supervisor.node_statuses
        return {name for name, node in self.supervisor.nodes.items()
                if statuses.get(name) is NodeStatus.HEALTHY and not node.suspended
                and self.routes.nodes[name].backends}

    def _stored(self) -> dict[str, Alias]:
        return {a.name: a for a in self.store.aliases()}

    def has(self, name: str) -> bool:
        """Whether an alias `name` exists."""
        return name in self._stored()

    def all(self) -> list[dict[str, Any]]:
        """Every alias, as `get` shows it."""
        return [self._json(a) for a in self.store.aliases()]

    def get(self, name: str) -> dict[str, Any]:
        """The alias with its endpoint and the status of each node it routes to."""
        alias = self._stored().get(name)
        if alias is None:
            raise NotFound(f"no alias {name!r}", field="alias")
        return self._json(alias)

    def _json(self, alias: Alias) -> dict[str, Any]:
        statuses = self.supervisor.node_statuses
        return {
            **alias.to_json(),
            "endpoint": f"{self.gateway_url()}/v1/aliases/{alias.name}:execute",
            "routing": [{"node": n, "weight": w, "status": statuses[n].value if n in statuses
                         else None} for n, w in alias.nodes.items()],
        }

    def delete(self, name: str) -> None:
        """Delete the alias; its callers get 404 from now on."""
        self.get(name)
        self.store.remove_alias(name)
        self.routes.aliases.pop(name, None)
        self.gateway.metrics.forget(alias=name)
        self.events.add("alias", name, "deleted", f"alias {name} deleted")

    def shadow(self, name: str) -> dict[str, Any]:
        """How the alias's shadow node answered, beside the primary answers."""
        alias = self.get(name)
        route = self.routes.aliases[name]
        return {"alias": name, "shadow": alias["shadow"], **route.shadow_record.to_json()}
