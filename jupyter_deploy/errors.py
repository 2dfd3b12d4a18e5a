"""Every error the data plane answers, in one table: code -> HTTP status -> gRPC status.

The REST gateway, the gRPC gateway, the HTTP layer and the workers all answer from it, so an
error means the same on every port. Its JSON form is `{"error": {"code", "message", "field"}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .http.client import ResponseTooLarge
from .http.messages import Response


@dataclass(frozen=True)
class Kind:
    status: int  # HTTP
    grpc: str  # the name of a grpc.StatusCode: workers and the HTTP layer do not import grpc


# The first code of each HTTP status says what an answer with that status means to gRPC when
# it carries no code of this table (an instance's own answer, say).
ERRORS: dict[str, Kind] = {
    "bad_request": Kind(400, "INVALID_ARGUMENT"),
    "malformed_json": Kind(400, "INVALID_ARGUMENT"),
    "grpc_node": Kind(400, "UNIMPLEMENTED"),  # an HTTP call to a node that speaks gRPC
    "unauthorized": Kind(401, "UNAUTHENTICATED"),
    "forbidden": Kind(403, "PERMISSION_DENIED"),
    "not_found": Kind(404, "NOT_FOUND"),
    "method_not_allowed": Kind(405, "UNIMPLEMENTED"),
    "request_timeout": Kind(408, "DEADLINE_EXCEEDED"),
    "payload_too_large": Kind(413, "RESOURCE_EXHAUSTED"),
    "invalid_input": Kind(422, "INVALID_ARGUMENT"),
    "queue_full": Kind(429, "RESOURCE_EXHAUSTED"),  # the node's queue: come back later
    "headers_too_large": Kind(431, "RESOURCE_EXHAUSTED"),
    "abandoned": Kind(499, "CANCELLED"),  # the caller went away before its turn
    "internal": Kind(500, "INTERNAL"),
    "missing_output": Kind(500, "INTERNAL"),
    "invalid_output": Kind(500, "INTERNAL"),
    "unserializable_output": Kind(500, "INTERNAL"),
    "bad_gateway": Kind(502, "UNAVAILABLE"),
    "response_too_large": Kind(502, "RESOURCE_EXHAUSTED"),
    "unavailable": Kind(503, "UNAVAILABLE"),
    "not_ready": Kind(503, "UNAVAILABLE"),
    "timeout": Kind(504, "DEADLINE_EXCEEDED"),
    "not_implemented": Kind(501, "UNIMPLEMENTED"),
    "version_not_supported": Kind(505, "UNIMPLEMENTED"),
}
BY_STATUS: dict[int, str] = {}
for _name, _kind in ERRORS.items():
    BY_STATUS.setdefault(_kind.status, _kind.grpc)
CELL_RAISED = "UNKNOWN"  # the gRPC status of a call whose cell raised


def status_of(code: str) -> int:
    """The HTTP status of an error code of the table."""
    return ERRORS[code].status


def grpc_name(status: int, code: str | None = None) -> str:
    """The gRPC status (a grpc.StatusCode name) of an HTTP answer and its error code."""
    kind = ERRORS.get(code) if code is not None else None
    return kind.grpc if kind is not None else BY_STATUS.get(status, "INTERNAL")


def error(code: str, message: str, field: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """A JSON error answer: `{"error": {"code", "message", "field"}}`, its status from the
    table."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return Response(ERRORS[code].status, json.dumps({"error": body}).encode(), headers)


def unavailable(what: str) -> Response:
    """503: `what` (a node, an alias) has no healthy instance; the caller may retry soon."""
    return error("unavailable", f"{what} has no healthy instance right now",
                 headers={"Retry-After": "1"})


def too_large(size: int, limit: int, headers: dict[str, str] | None = None) -> Response:
    """502: the instance answered more than the caller may get."""
    return error("response_too_large", f"the instance answered {size} bytes, more than "
                 f"the {limit} allowed", headers=headers)


def upstream_failure(exc: Exception, limit: int, headers: dict[str, str] | None = None
                     ) -> Response:
    """The caller's answer when an instance timed out, answered too much or broke off."""
    if isinstance(exc, TimeoutError):
        return error("timeout", "the instance did not answer in time", headers=headers)
    if isinstance(exc, ResponseTooLarge):
        return too_large(exc.size, limit, headers)
    return error("bad_gateway", f"the instance failed: {exc}", headers=headers)
