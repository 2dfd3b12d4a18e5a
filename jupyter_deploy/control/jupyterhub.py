"""The deploy service as a JupyterHub service: who calls it, as the hub proves it.

`jupyter deploy serve` started by a hub (`c.JupyterHub.services`, with the hub's API token in
its environment) authenticates every control-API request with the hub: a token (a user's own,
or the one a user's notebook server holds for that user) or, for a browser that opens the
service directly, the hub's OAuth. The hub resolves the token to its user; the user's groups
and admin flag are then read with the service's own token. A name in a header or a body is
never looked at. See docs/jupyterhub.md.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from typing import Any
from urllib.parse import quote, urlsplit

from jupyter_server.auth import User
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.web import RequestHandler, authenticated
from traitlets import Float

from ..service.identity import Identity

SERVICE_ENV = "JUPYTERHUB_SERVICE_NAME"


class HubUser(User):
    """A jupyter_server user that carries the identity the hub gave it."""

    identity: Identity

    def __init__(self, identity: Identity) -> None:
        super().__init__(username=identity.user)
        self.identity = identity


class LoginHandler(JupyterHandler):
    """`/deploy/login`: a browser signs in through the hub's OAuth, then sees who it is."""

    @authenticated
    def get(self) -> None:
        self.redirect(url_path_join(self.base_url, "deploy/api/identity"))


class HubIdentityProvider(JupyterHubIdentityProvider):
    """Hub tokens and the hub's OAuth; groups and admin from the hub, cached briefly."""

    cache_ttl = Float(30.0, config=True, help=(
        "Seconds a user's groups and admin flag, as the hub gave them, are reused."))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hub_auth.cache_max_age = int(self.cache_ttl)  # token → user, same short TTL
        self.hub_auth._patch_xsrf = self._patch_xsrf
        self._details: dict[str, tuple[float, Identity]] = {}
        self._http = AsyncHTTPClient(force_instance=True)

    async def get_user(self, handler: RequestHandler) -> User | None:
        """The hub's user of the request's token or cookie, None when it has none."""
        if self._own_token(handler):
            # The service's own token (its service.json): only its operator can read it.
            handler._token_authenticated = True  # type: ignore[attr-defined]
            return HubUser(Identity(os.environ.get(SERVICE_ENV, "deploy"), admin=True))
        user = await super().get_user(handler)
        if user is None or not hasattr(user, "hub_user"):
            return user
        model: dict[str, Any] = user.hub_user
        if model.get("kind", "user") != "user":
            return None  # another service's token is no user of a project
        return HubUser(await self._identity(str(model["name"])))

    def get_handlers(self) -> list[tuple[str, Any]]:
        """The hub's OAuth callback and logout, and the browser's way in."""
        return [*super().get_handlers(), ("/deploy/login", LoginHandler)]

    def _patch_xsrf(self, handler: RequestHandler) -> None:
        """jupyter_server's own XSRF check stays: it skips token-authenticated requests and
        runs after the user is known (the hub's patch ran before, and refused every POST)."""

    def _own_token(self, handler: RequestHandler) -> bool:
        token = self.hub_auth.get_token(handler, in_cookie=False)
        return bool(token) and hmac.compare_digest(token, self.hub_auth.api_token or "")

    async def _identity(self, name: str) -> Identity:
        """The user's groups and admin flag, read with the service's token."""
        cached = self._details.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = f"{self.hub_auth.api_url.rstrip('/')}/users/{quote(name, safe='')}"
        request = HTTPRequest(url, headers={"Authorization": f"token {self.hub_auth.api_token}"},
                              connect_timeout=5, request_timeout=10)
        try:
            model = json.loads((await self._http.fetch(request)).body)
        except (HTTPClientError, OSError) as exc:
            # The name is proven; without the scope to read more it has no groups.
            self.log.warning("jupyter_deploy: the hub did not give %s's groups (%s); grant "
                             "the service read:users:groups and read:users:name", name, exc)
            model = {}
        identity = Identity(name, frozenset(model.get("groups") or ()),
                            bool(model.get("admin", False)))
        self._details[name] = (time.monotonic() + self.cache_ttl, identity)
        return identity


def serve_options() -> list[str]:
    """The Jupyter server options of a service the hub started: its address and prefix as
    the hub gave them, and the hub's authentication."""
    options = ["--ServerApp.identity_provider_class="
               "jupyter_deploy.control.jupyterhub.HubIdentityProvider"]
    url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
    if url:
        parts = urlsplit(url)
        options += [f"--ServerApp.ip={parts.hostname or '127.0.0.1'}",
                    f"--ServerApp.port={parts.port or 80}"]
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if prefix:
        options.append(f"--ServerApp.base_url={prefix}")
    return options
