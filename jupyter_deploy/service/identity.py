"""Who makes a control-API request: the caller every service operation acts as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who makes a control-API request, as proven by the server that authenticated it."""

    user: str
    groups: frozenset[str] = frozenset()
    admin: bool = False  # a hub admin: every project, every role


LOCAL = Identity("default")  # a single JupyterLab without a hub: the one personal project "default"
