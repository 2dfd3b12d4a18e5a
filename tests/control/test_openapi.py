"""The control API's OpenAPI document: every route of the handler table and nothing else,
and real answers that validate against its schemas."""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from jsonschema import Draft202012Validator
from tornado import web
from tornado.httpclient import HTTPClientError

from jupyter_deploy.control.openapi import document
from jupyter_deploy.service.validation.aliases import ALIAS_FIELDS
from jupyter_deploy.service.validation.containers import CONTAINER_FIELDS
from jupyter_deploy.service.validation.nodes import NODE_FIELDS

from ..conftest import checkpoint_body, until
from .test_api import ADDER, call, error_of

VERBS = ("get", "post", "put", "patch", "delete")
PARAMETER = {"nodes": "{node}", "aliases": "{alias}", "checkpoints": "{checkpoint}",
             "projects": "{project}", "user": "{member}", "group": "{member}"}


def openapi_paths(pattern: str) -> list[str]:
    """The OpenAPI paths a handler-table pattern serves: alternatives expanded, groups named
    after the collection they follow (nodes/{node}), the colon as a client writes it."""
    pattern = pattern.replace("(?::|%3[Aa])", ":")
    choice = re.search(r"\(\?P<\w+>([a-z|]+)\)", pattern)
    if choice:
        return [path for option in choice.group(1).split("|") for path in
                openapi_paths(pattern[:choice.start()] + option + pattern[choice.end():])]
    return [re.sub(r"(\w+)/\(\?P<\w+>[^)]*\)", lambda m: f"{m[1]}/{PARAMETER[m[1]]}",
                   pattern)]


def served_operations(handlers: list[tuple[Any, ...]]) -> set[tuple[str, str]]:
    """(path, verb) of every operation the handler table serves."""
    served = set()
    for pattern, handler, *_ in handlers:
        verbs = [v for v in VERBS if getattr(handler, v) is not getattr(web.RequestHandler, v)]
        served |= {(path, verb) for path in openapi_paths(pattern) for verb in verbs}
    return served


def test_the_document_describes_every_route_and_only_those(jp_serverapp):
    app = jp_serverapp.extension_manager.extension_points["jupyter_deploy"].app
    doc = document()
    documented = {(path, verb) for path, item in doc["paths"].items() for verb in item
                  if verb in VERBS}
    served = served_operations(app.handlers)
    assert served - documented == set(), "routes the document leaves out"
    assert documented - served == set(), "operations the document has and no handler serves"
    schemas = doc["components"]["schemas"]
    assert set(schemas["NodeCreate"]["properties"]) == NODE_FIELDS | CONTAINER_FIELDS | {
        "name", "runtime", "project"}, "node settings the document and the validation disagree on"
    assert set(schemas["NodeUpdate"]["properties"]) == NODE_FIELDS | CONTAINER_FIELDS - {"image"}
    assert set(schemas["AliasCreate"]["properties"]) == ALIAS_FIELDS | {"project"}
    schemathesis.openapi.from_dict(doc)  # a document schemathesis takes (it checks the shape)
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def check_answer(doc: dict[str, Any], path: str, verb: str, status: int, answer: Any) -> None:
    """`answer` validates against the document's schema of that operation and status."""
    responses = doc["paths"][path][verb]["responses"]
    response = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
    schema = next(iter(response["content"].values()))["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer)]
    assert errors == [], (path, verb, status)


async def test_real_answers_validate_against_the_document(jp_fetch, deploy):
    doc = await call(jp_fetch, "openapi.json")
    assert doc["openapi"].startswith("3.1") and doc == document(doc["servers"][0]["url"])
    api = "/deploy/api"
    answers = [(f"{api}/checkpoints", "post", 201, await call(
        jp_fetch, "checkpoints", method="POST", body=checkpoint_body("adder", **ADDER)))]
    answers.append((f"{api}/nodes", "post", 201, await call(
        jp_fetch, "nodes", method="POST", body={"name": "adder", "checkpoint": "adder"})))
    await until(lambda: deploy.node("adder")["status"] == "Healthy", timeout=30,
                message="the node to be Healthy")
    alias = {"nodes": {"adder": 100}, "metadata": {"team": "a"}}
    answers += [
        (f"{api}/aliases", "post", 201, await call(jp_fetch, "aliases", method="POST",
                                                   body={"name": "a", **alias})),
        (f"{api}/aliases/{{alias}}", "put", 200, await call(jp_fetch, "aliases", "a",
                                                           method="PUT", body=alias)),
        (f"{api}/nodes/{{node}}", "patch", 200, await call(jp_fetch, "nodes", "adder",
                                                          method="PATCH", body={"max": 2})),
        (f"{api}/nodes/{{node}}:execute", "post", 200, await call(
            jp_fetch, "nodes", "adder:execute", method="POST", body={"input": {"a": 1, "b": 2}})),
    ]
    reads = {"": api, "checkpoints": f"{api}/checkpoints", "nodes": f"{api}/nodes",
             "aliases": f"{api}/aliases", "events": f"{api}/events",
             "checkpoints/adder": f"{api}/checkpoints/{{checkpoint}}",
             "nodes/adder": f"{api}/nodes/{{node}}", "aliases/a": f"{api}/aliases/{{alias}}",
             **{f"nodes/adder/{tail}": f"{api}/nodes/{{node}}/{tail}" for tail in
                ("instances", "logs", "stats", "examples", "requests")},
             "aliases/a/shadow": f"{api}/aliases/{{alias}}/shadow",
             "projects": f"{api}/projects", "projects/default": f"{api}/projects/{{project}}",
             "projects/default/events": f"{api}/projects/{{project}}/events",
             "identity": f"{api}/identity"}
    for where, path in reads.items():
        answers.append((path, "get", 200, await call(jp_fetch, *filter(None, where.split("/")))))
    code, error = await error_of(jp_fetch, "nodes", method="POST", body={"name": "Bad"})
    answers.append((f"{api}/nodes", "post", code, error))
    for path, verb, status, answer in answers:
        check_answer(doc, path, verb, status, answer)
    assert {a[0] for a in answers} | {f"{api}/openapi.json"} >= {
        p for p, item in doc["paths"].items() if "get" in item and "{" not in p}


async def test_the_document_needs_authentication(jp_fetch, deploy):
    try:
        await jp_fetch("deploy", "api", "openapi.json", headers={"Authorization": ""})
    except HTTPClientError as exc:
        assert exc.code in (401, 403)
    else:
        raise AssertionError("the document was served without a token")
