"""The one error table: each code's HTTP answer, and what a REST answer means to gRPC."""

from __future__ import annotations

import json

import grpc
import pytest

from jupyter_deploy.errors import ERRORS, error, unavailable, upstream_failure
from jupyter_deploy.gateway.grpc.server import failure
from jupyter_deploy.http.client import ResponseTooLarge, UpstreamError
from jupyter_deploy.http.messages import Response

Code = grpc.StatusCode


@pytest.mark.parametrize(("code", "status", "grpc_code"), [
    ("malformed_json", 400, Code.INVALID_ARGUMENT),
    ("unauthorized", 401, Code.UNAUTHENTICATED),
    ("forbidden", 403, Code.PERMISSION_DENIED),
    ("not_found", 404, Code.NOT_FOUND),
    ("method_not_allowed", 405, Code.UNIMPLEMENTED),
    ("payload_too_large", 413, Code.RESOURCE_EXHAUSTED),
    ("invalid_input", 422, Code.INVALID_ARGUMENT),
    ("internal", 500, Code.INTERNAL),
    ("bad_gateway", 502, Code.UNAVAILABLE),
    ("response_too_large", 502, Code.RESOURCE_EXHAUSTED),
    ("unavailable", 503, Code.UNAVAILABLE),
    ("timeout", 504, Code.DEADLINE_EXCEEDED),
])
def test_a_code_answers_the_same_on_both_ports(code, status, grpc_code):
    response = error(code, "why", field="input.a")
    assert response.status == status
    assert json.loads(response.body) == {"error": {"code": code, "message": "why",
                                                   "field": "input.a"}}
    failed = failure(response)
    assert (failed.code, failed.message) == (grpc_code, "why")


@pytest.mark.parametrize(("status", "body", "grpc_code"), [
    (502, b"not json", Code.UNAVAILABLE),  # no code of the table: the status says
    (503, b'{"error": {"code": "somebody_elses"}}', Code.UNAVAILABLE),
    (418, b"{}", Code.INTERNAL),
    (500, b"[1]", Code.INTERNAL),
])
def test_answers_without_a_known_code_go_by_their_status(status, body, grpc_code):
    assert failure(Response(status, body)).code == grpc_code


def test_the_cell_raising_is_unknown_with_its_traceback():
    body = {"error_name": "ZeroDivisionError", "error_message": "division by zero",
            "traceback": ["line 1", "line 2"]}
    failed = failure(Response(500, json.dumps(body).encode()))
    assert (failed.code, failed.message) == (Code.UNKNOWN, "ZeroDivisionError: division by zero")
    assert dict(failed.trailing) == {"x-error-name": "ZeroDivisionError",
                                     "traceback-bin": b"line 1\nline 2"}


def test_upstream_failures():
    cases = [(TimeoutError(), 504, "timeout"), (UpstreamError("closed"), 502, "bad_gateway"),
             (ResponseTooLarge(20), 502, "response_too_large")]
    for exc, status, code in cases:
        response = upstream_failure(exc, 10, {"x-node-id": "a"})
        assert (response.status, json.loads(response.body)["error"]["code"]) == (status, code)
        assert response.headers == {"x-node-id": "a"}
    assert unavailable("node 'a'").headers == {"Retry-After": "1"}


def test_every_grpc_name_is_a_status_code():
    assert all(kind.grpc in Code.__members__ for kind in ERRORS.values())
