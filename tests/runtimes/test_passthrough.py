"""Pass-through to a Docker-image node that speaks HTTP/1.1 keep-alive (issue 11): pooled
connections, answers framed by their status and method, fields passed as they came."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..conftest import wait_for
from .test_docker import BASE, FAST_HEALTH, containers, engine  # noqa: F401 - a fixture

APP = Path(__file__).resolve().parent / "keepalive_app"
IMAGE = "jupyter-deploy-test-keepalive:latest"


@pytest.fixture(scope="module")
def keepalive(service, engine):  # noqa: F811 - the fixture imported above
    """A node of one instance of the keep-alive app; (a connection to the gateway, its key)."""
    image, _ = engine.images.build(path=str(APP), buildargs={"BASE": BASE}, rm=True, tag=IMAGE)
    created = service.client.create_node({
        "name": "keepalive", "image": IMAGE, "port": 8080, "min": 1, "max": 1,
        "health": {"path": "/healthz", **FAST_HEALTH}})
    wait_for(lambda: service.client.node("keepalive")["status"] == "Healthy", timeout=60,
             message="node keepalive to be Healthy")
    url = urlsplit(service.gateway_url)
    yield url, created["key"]
    service.client.delete_node("keepalive")
    wait_for(lambda: not containers(engine, "keepalive"), timeout=30,
             message="the keepalive containers to go")
    engine.images.remove(image.id, force=True)


class Caller:
    """One keep-alive connection to the gateway, as a client library holds it."""

    def __init__(self, url: Any, key: str) -> None:
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        self.key = key

    def __call__(self, method: str, path: str, **headers: str
                 ) -> tuple[int, http.client.HTTPMessage, bytes]:
        self.connection.request(method, "/v1/nodes/keepalive" + path, headers={
            "Authorization": f"Bearer {self.key}", **headers})
        answer = self.connection.getresponse()
        return answer.status, answer.headers, answer.read()


def test_answers_without_a_body_are_framed(keepalive):
    call = Caller(*keepalive)
    status, headers, body = call("GET", "/nocontent")
    assert (status, body) == (204, b"") and "Content-Type" not in headers
    status, headers, body = call("HEAD", "/page")
    assert (status, body, headers["Content-Length"]) == (200, b"", "1000")
    status, headers, body = call("GET", "/notmodified")
    assert (status, body, headers["ETag"]) == (304, b"", '"v1"')
    status, headers, body = call("GET", "/hints")
    assert (status, body) == (200, b"final") and "Link" not in headers
    status, _, body = call("GET", "/page")
    assert (status, body) == (200, b"x" * 1000)  # the connections are still in step


def test_fields_pass_as_they_came(keepalive):
    call = Caller(*keepalive)
    status, headers, body = call("GET", "/cookies")
    assert status == 200 and headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2, c; Path=/"]
    status, headers, body = call("GET", "/untyped")
    assert (status, body) == (200, b"plain") and "Content-Type" not in headers
    status, headers, body = call("GET", "/chunked")
    assert (status, body) == (200, b"hello world")
    status, headers, _ = call("GET", "/hop")
    assert headers["X-Kept"] == "k" and "X-Secret" not in headers and "Keep-Alive" not in headers
    status, _, body = call("POST", "/echo", **{
        "Connection": "X-Private", "X-Private": "p", "Keep-Alive": "timeout=1", "TE": "trailers",
        "X-Forwarded-For": "10.0.0.1", "Via": "1.0 proxy", "X-Test": "kept"})
    fields = {name.lower(): value for name, value in json.loads(body)["fields"]}
    assert not {"x-private", "keep-alive", "te", "authorization"} & set(fields)
    assert fields["x-test"] == "kept" and fields["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert fields["x-forwarded-proto"] == "http"
    assert fields["via"] == "1.0 proxy, 1.1 jupyter-deploy"


def test_pool_reuses_only_connections_read_exactly(keepalive):
    call = Caller(*keepalive)
    first = call("GET", "/echo")[1]["X-Conn"]
    assert call("GET", "/echo")[1]["X-Conn"] == first  # pooled: the same upstream connection
    status, headers, body = call("GET", "/extra")
    assert (status, body) == (200, b"right")
    extra = headers["X-Conn"]
    for _ in range(3):  # the unasked-for answer is never served to anyone
        status, headers, body = call("GET", "/echo")
        assert status == 200 and body != b"WRONG" and json.loads(body)["target"] == "/echo"
        assert headers["X-Conn"] != extra
    for length in ("-3", "+5"):
        assert call("GET", f"/badlength?v={length}")[0] == 502
    assert call("GET", "/echo")[0] == 200
