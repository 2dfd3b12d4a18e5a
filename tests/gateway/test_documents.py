"""What strangers see (issue 11): cell errors without tracebacks for anonymous callers of a
public alias, OpenAPI documents whose paths resolve and whose server is the gateway's own
(never the Host header), enums enforced, and schemathesis finding nothing to break."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.gateway.app import Gateway
from jupyter_deploy.gateway.routing import Routes

from ..conftest import checkpoint_body
from .test_gateway import post

RAISER = checkpoint_body("raiser", "shift = 1\nratio = a / b + shift", "a:float,b:float",
                         "ratio", a=1.0, b=1.0)
GREETER = checkpoint_body("greeter", "greeting = f'{word} x {times + 1}'", "word:str,times:int",
                          "greeting", word="hi", times=1)


def get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def raiser(service):
    node, key = service.create_node("raiser", RAISER)
    alias = service.client.set_alias("raiser-pub", {"nodes": {"raiser": 100}, "public": True})
    yield node, key, alias["key"]
    service.client.delete_alias("raiser-pub")
    service.client.delete_node("raiser")


def test_anonymous_callers_of_a_public_alias_get_no_traceback(raiser, service):
    node, node_key, alias_key = raiser
    url = service.gateway_url + "/v1/aliases/raiser-pub:execute"
    zero = {"input": {"a": 1, "b": 0}}
    status, body, _ = post(url, zero, **{"x-request-id": "anon-1"})
    assert status == 500
    assert body == {"error_name": "ZeroDivisionError",
                    "error_message": "float division by zero"}
    # the traceback goes to the instance log, under the request id
    [item] = service.client.logs("raiser", request_id="anon-1")
    assert '[anon-1]   File "<cell raiser>", line 2, in <module>' in item["log"]
    # the key of its node keeps the seed's details, through the alias and on the node
    assert alias_key is None  # a public alias has no key of its own
    for key, target in ((node_key, url), (node_key, node["endpoint"])):
        status, body, _ = post(target, zero, key)
        assert status == 500 and body["error_name"] == "ZeroDivisionError"
        assert 'File "<cell raiser>", line 2, in <module>' in "\n".join(body["traceback"])


def test_a_node_may_expose_its_tracebacks(raiser, service):
    url = service.gateway_url + "/v1/aliases/raiser-pub:execute"
    cli = [sys.executable, "-m", "jupyter_deploy.cli", "node", "update", "raiser"]
    for flag, shown in (("--expose-tracebacks", True), ("--no-expose-tracebacks", False)):
        done = subprocess.run([*cli, flag], env=service.kernel_env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert service.client.node("raiser")["expose_tracebacks"] is shown
        status, body, _ = post(url, {"input": {"a": 1, "b": 0}})
        assert status == 500 and ("traceback" in body) is shown


def test_expose_tracebacks_is_checked(raiser, service):
    from jupyter_deploy.client import ClientError

    with pytest.raises(ClientError) as caught:
        service.client.update_node("raiser", {"expose_tracebacks": "yes"})
    assert caught.value.status == 422
    assert caught.value.body["error"]["field"] == "expose_tracebacks"


def test_alias_documents_have_paths_that_resolve(raiser, service):
    status, page = get(service.gateway_url + "/v1/aliases/raiser-pub/docs")
    assert status == 200 and b'"/v1/aliases/raiser-pub/openapi.json"' in page
    status, text = get(service.gateway_url + "/v1/aliases/raiser-pub/openapi.json")
    assert status == 200
    document = json.loads(text)
    [path] = document["paths"]
    assert path == "/v1/aliases/raiser-pub:execute"
    status, body, _ = post(document["servers"][0]["url"] + path, {"input": {"a": 4, "b": 2}})
    assert (status, body) == (200, {"output": {"ratio": 3.0}})
    examples = service.client.request("GET", "/aliases/raiser-pub/examples")
    assert examples["endpoint"] == service.gateway_url + path


def test_the_server_of_a_document_is_never_the_host_header(raiser, service):
    status, text = get(service.gateway_url + "/v1/nodes/raiser/openapi.json",
                       Host="evil.example:1234")
    assert status == 200
    assert json.loads(text)["servers"] == [{"url": service.gateway_url}]


def test_the_public_url_setting_names_the_server():
    async def document() -> dict[str, Any]:
        checkpoint = {"ref": "c@1", "source": "y = x", "inputs": [], "outputs": []}
        gateway = Gateway(Routes(), describe=lambda kind, name: (checkpoint, True),
                          public_url="https://api.example.com/")
        port = await gateway.listen("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v1/nodes/n/openapi.json HTTP/1.1\r\nHost: evil.example\r\n"
                         b"Connection: close\r\n\r\n")
            answer = await reader.read()
            writer.close()
        finally:
            await gateway.stop(1.0)
        return json.loads(answer.split(b"\r\n\r\n", 1)[1])

    assert asyncio.run(document())["servers"] == [{"url": "https://api.example.com"}]


def test_an_array_encoding_outside_its_enum_is_refused(raiser, service):
    node, key, _ = raiser
    for url, token in ((node["endpoint"], key),
                       (service.gateway_url + "/v1/aliases/raiser-pub:execute", None)):
        status, body, _ = post(url, {"input": {"a": 1, "b": 1}}, token,
                               **{"x-array-encoding": "base65"})
        assert status == 400 and body["error"]["field"] == "x-array-encoding"
        status, _, _ = post(url, {"input": {"a": 1, "b": 1}}, token,
                            **{"x-array-encoding": "base64"})
        assert status == 200


@pytest.fixture(scope="module")
def documented(service):
    """A node whose cell cannot raise (a cell that raises is a 500 by design), a private
    and a public alias of it."""
    node, key = service.create_node("greeter", GREETER)
    private = service.client.set_alias("greeter-key", {"nodes": {"greeter": 100}})
    service.client.set_alias("greeter-pub", {"nodes": {"greeter": 100},
                                              "public": True})
    yield {"nodes/greeter": key, "aliases/greeter-key": private["key"],
           "aliases/greeter-pub": None}
    for alias in ("greeter-key", "greeter-pub"):
        service.client.delete_alias(alias)
    service.client.delete_node("greeter")


SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (test extra)")
def test_schemathesis_finds_no_5xx_and_no_schema_violation(documented, service, tmp_path):
    failures = []
    for target, key in documented.items():
        url = f"{service.gateway_url}/v1/{target}/openapi.json"
        command = [SCHEMATHESIS, "run", url, "--max-examples", "50", "--workers", "1",
                   "--checks", "all", "--seed", "11", "--no-color"]
        if key is not None:
            command += ["-H", f"Authorization: Bearer {key}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        if done.returncode != 0:
            failures.append(f"{target}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)

