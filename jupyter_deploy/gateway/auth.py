"""The one key check of the data plane: REST, gRPC and the pass-through to images alike."""

from __future__ import annotations

from ..errors import error
from ..http.messages import Response
from .routing import AliasRoute, Route


def key_problem(target: Route | AliasRoute, what: str, name: str, authorization: str | None
                ) -> tuple[str, str] | None:
    """None when the caller may use `target` (a public alias, or the key that opens it); else
    the error code of the table (unauthorized: no key; forbidden: a key that does not open it)
    and its message. `what`: node or alias."""
    if isinstance(target, AliasRoute) and target.public:
        return None
    if not authorization:
        return "unauthorized", f"send Authorization: Bearer <{what} key>"
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not target.key_matches(key.strip()):
        return "forbidden", f"the key does not open {what} {name!r}"
    return None


def refusal(target: Route | AliasRoute, what: str, name: str, authorization: str | None
            ) -> Response | None:
    """The HTTP answer of `key_problem`: 401 (with WWW-Authenticate) or 403; None to go on."""
    problem = key_problem(target, what, name, authorization)
    if problem is None:
        return None
    code, message = problem
    headers = {"WWW-Authenticate": "Bearer"} if code == "unauthorized" else None
    return error(code, message, headers=headers)


def holds_key(target: Route | AliasRoute, routes: dict[str, Route], authorization: str | None
              ) -> bool:
    """Whether the caller sent the key of `target` or, for an alias, of one of its nodes:
    such callers see a cell's traceback."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    key = key.strip()
    if target.key_matches(key):
        return True
    return isinstance(target, AliasRoute) and any(
        node in routes and routes[node].key_matches(key) for node, _ in target.weights)
