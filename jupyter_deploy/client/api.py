"""HTTP client of the control API; the magics and the CLI sit on it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from . import discovery


class ClientError(Exception):
    """The service refused a request; `message` is the service's own explanation."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


NOT_FOUND = ("no deploy service found: open this notebook in a Jupyter server with "
             "jupyter_deploy enabled, or start one with `jupyter deploy serve`")
# Answers after which discovery is read again: the service or the Jupyter server in front
# of it may have restarted on another port or with another token (issue 13).
STALE = (401, 403)
# 403s that are the service's own answer, not a refused token: a role or a quota (issue 19)
REFUSALS = ("forbidden", "quota_exceeded")


class DeployClient:
    def __init__(self, url: str, token: str = "", timeout_s: float = 120.0,
                 rediscover: bool = False) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.rediscover = rediscover  # found by discovery: may look again when refused
        self.project: str | None = None  # `?project=` of every call (None: the caller's own)

    @classmethod
    def discover(cls) -> DeployClient:
        info = discovery.find()
        if info is None:
            raise ClientError(NOT_FOUND)
        return cls(info["url"], info.get("token", ""), rediscover=True)

    def _refresh(self) -> bool:
        """Read discovery again; whether it names another service or token to try."""
        info = discovery.find(fresh=True)
        if info is None or (info["url"].rstrip("/"), info.get("token", "")) == (
                self.url, self.token):
            return False
        self.url, self.token = info["url"].rstrip("/"), info.get("token", "")
        return True

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                text: bool = False, **params: Any) -> Any:
        """The answer's JSON (its text with `text`); ClientError when refused."""
        with self.open(method, path, body, raw, **params) as response:
            payload = response.read()
        if text:
            return payload.decode("utf-8", "replace")
        return json.loads(payload) if payload else None

    def open(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             stream: bool = False, **params: Any) -> Any:
        """The response, to read, or ClientError; `stream`: no time limit on reads.

        Refused at the door (connection refused, 401, 403), a discovered client reads
        discovery again and tries once more."""
        try:
            return self._open(method, path, body, raw, stream, **params)
        except ClientError as exc:
            if not (self.rediscover and (_stale(exc) or exc.status == 0)
                    and self._refresh()):
                raise _explained(exc, self.url) from None
        try:
            return self._open(method, path, body, raw, stream, **params)
        except ClientError as exc:
            raise _explained(exc, self.url) from None

    def _open(self, method: str, path: str, body: Any, raw: bytes | None, stream: bool,
              **params: Any) -> Any:
        url = self.url + path
        params.setdefault("project", self.project)
        query = {k: v for k, v in params.items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=None if stream else self.timeout_s)
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                detail = json.loads(payload)
            except ValueError:
                detail = None
            message = error_message(detail) or f"HTTP {exc.code} {exc.reason}"
            raise ClientError(message, exc.code, detail) from None
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach the deploy service at {self.url}: {exc.reason}") from None

    # the verbs the magics and the CLI use ------------------------------------------------

    def add_checkpoint(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/checkpoints", checkpoint)

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.request("GET", "/checkpoints")["checkpoints"]

    def create_node(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/nodes", spec)

    def nodes(self) -> list[dict[str, Any]]:
        return self.request("GET", "/nodes")["nodes"]

    def node(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/nodes/{_quote(name)}")

    def delete_node(self, name: str) -> None:
        self.request("DELETE", f"/nodes/{_quote(name)}")

    def update_node(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"/nodes/{_quote(name)}", changes)

    def suspend_node(self, name: str, suspended: bool) -> dict[str, Any]:
        action = "suspend" if suspended else "resume"
        return self.request("POST", f"/nodes/{_quote(name)}:{action}")

    def set_alias(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create or re-point an alias: {"alias": ..., "key": KEY or None}."""
        return self.request("PUT", f"/aliases/{_quote(name)}", spec)

    def aliases(self) -> list[dict[str, Any]]:
        return self.request("GET", "/aliases")["aliases"]

    def delete_alias(self, name: str) -> None:
        self.request("DELETE", f"/aliases/{_quote(name)}")

    def logs(self, name: str, instance: str | None = None, tail: int | None = None,
             request_id: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", f"/nodes/{_quote(name)}/logs", instance=instance,
                            tail=tail, request_id=request_id)["logs"]

    def follow_logs(self, name: str, instance: str | None = None, tail: int | None = None,
                    request_id: str | None = None) -> Iterator[dict[str, Any]]:
        """`{"instance", "log"}` as lines are written, until the node is deleted."""
        with self.open("GET", f"/nodes/{_quote(name)}/logs", stream=True, follow="true",
                       instance=instance, tail=tail, request_id=request_id) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def requests(self, name: str, last: int = 100) -> dict[str, Any]:
        """The node's captured requests (newest last) and its declared inputs and outputs."""
        return self.request("GET", f"/nodes/{_quote(name)}/requests", last=last)

    def metrics(self, name: str) -> str:
        """The node's instances' own metrics, labelled with node_id and instance_id."""
        return self.request("GET", f"/nodes/{_quote(name)}/metrics", text=True)

    def events(self, node: str | None = None, since: int = 0, wait: int = 0
               ) -> list[dict[str, Any]]:
        """Events after `since`; with `wait` (whole seconds), wait that long for the next."""
        return self.request("GET", "/events", node=node, since=since,
                            wait=wait or None)["events"]

    def call(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the node's cell with `inputs`; its outputs, or ClientError."""
        return self.request("POST", f"/nodes/{_quote(name)}:execute", {"input": inputs})["output"]


def _explained(exc: ClientError, url: str) -> ClientError:
    """A refusal of the token says why: Jupyter's own words ('_xsrf' argument missing,
    Forbidden) only say that the request was not authenticated."""
    if not _stale(exc):
        return exc
    message = (f"{exc.message}: {url} did not accept this client's token (HTTP {exc.status}). "
               "The Jupyter server or the deploy service was probably restarted with a new "
               "token and no running service was found to switch to; check `jupyter deploy "
               "status`, or set JUPYTER_DEPLOY_URL and JUPYTER_DEPLOY_TOKEN")
    return ClientError(message, exc.status, exc.body)


def _stale(exc: ClientError) -> bool:
    """Whether the answer refused this client's token (not a role or a quota)."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return exc.status in STALE and code not in REFUSALS


def error_message(detail: Any) -> str:
    """The message of an error body: a gateway or service error, or the cell's exception."""
    error = detail.get("error") if isinstance(detail, dict) else None
    if isinstance(error, dict):
        return error.get("message", "")
    if isinstance(detail, dict) and "error_name" in detail:
        return f"{detail['error_name']}: {detail.get('error_message', '')}"
    return ""


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="@")
