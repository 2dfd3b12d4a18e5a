"""Base of the control-API handlers: authentication, JSON bodies and errors."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ...models import DeployError, Unavailable
from ...service import DeployService
from ...service.identity import LOCAL, Identity
from ...service.projects_scope import Scope
from .bodies import parse_body


class DeployHandler(APIHandler):
    """Every handler is authenticated and authorized on the `deploy` resource."""

    auth_resource = "deploy"
    closed = False  # set when the client hangs up on a stream

    @property
    def service(self) -> DeployService:
        service = self.settings["deploy_service"]
        if not service.running:
            raise Unavailable(f"the deploy service is not running: {service.start_error}")
        return service

    @property
    def identity(self) -> Identity:
        """The caller, as the server's identify hook proves it (LOCAL without a hub)."""
        identify = self.settings.get("deploy_identify", lambda handler: LOCAL)
        identity: Identity = identify(self)
        return identity

    @property
    def scope(self) -> Scope:
        """The service's verbs as the caller, in `?project=NAME` (default: the caller's own)."""
        return self.service.scope(self.identity, self.get_argument("project", None))

    def body(self) -> Any:
        """The request's JSON body (None when empty); BadRequest for any other bytes."""
        return parse_body(self.request.body)

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A refused request is the caller's mistake: one line, no traceback."""
        if isinstance(value, DeployError):
            self.log.warning("%s %s: %s %s", self.request.method, self.request.path,
                             value.status, value.message)
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """DeployError → its status with `{"error": {code, message, field}}`; else 500."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DeployError):
            self.set_status(exc.status)
            body = exc.to_json()
        elif isinstance(exc, web.HTTPError):
            body = {"error": {"code": "http_error",
                              "message": exc.log_message or self._reason}}
        else:
            body = {"error": {"code": "internal", "message": "internal error: see the server log"}}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))
