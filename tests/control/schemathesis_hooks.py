"""Hooks of the schemathesis run against the control API (SCHEMATHESIS_HOOKS).

They point most calls at the objects the test made (so they reach the service's logic, not
only its 404s) and bound what a call may cost on a small shared machine; every other value
goes as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# made by the test; `default`: the personal project of a server without a hub
EXISTING = {"node": "adder", "alias": "a", "checkpoint": "adder", "project": "default"}
LOCAL_IMAGE = "jupyter-deploy-base:bookworm"  # the engine has it: nothing is ever pulled


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Existing names in paths (DELETE keeps the generated ones), no long poll (`wait` up
    to 60 s) nor endless log stream (`follow`), nodes without instances (`min` 0), and only
    the local image (a node's image is pulled when it is created: never from a registry)."""
    if case.method.upper() != "DELETE" and isinstance(case.path_parameters, dict):
        for name in set(case.path_parameters) & set(EXISTING):
            case.path_parameters[name] = EXISTING[name]
    if isinstance(case.query, dict):
        if "wait" in case.query:
            case.query["wait"] = 0
        if "follow" in case.query:
            case.query["follow"] = "false"
        if "project" in case.query:
            case.query["project"] = EXISTING["project"]
    if isinstance(case.body, dict):
        if case.method.upper() == "POST" and case.path.endswith("/nodes"):
            case.body.setdefault("min", 0)  # a new node's default minimum is 1
        _existing_references(case.body)


def _existing_references(body: dict[str, Any]) -> None:
    if _number(body.get("min")) and body["min"] > 0:
        body["min"] = 0
    if _number(body.get("max")) and body["max"] > 1:
        body["max"] = 1
    if isinstance(body.get("checkpoint"), str):
        body["checkpoint"] = EXISTING["checkpoint"]
    if isinstance(body.get("nodes"), dict) and body["nodes"]:
        body["nodes"] = {EXISTING["node"]: 100}
    for name in ("image", "base_image"):
        if isinstance(body.get(name), str) and body[name]:
            body[name] = LOCAL_IMAGE


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@schemathesis.check
def no_server_fault(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the contract's 503 with Retry-After when a node has no healthy
    instance to execute on (the fuzzer's own settings can make one unable to start)."""
    if response.status_code < 500:
        return None
    if response.status_code == 503 and case.path.endswith(":execute") and \
            "retry-after" in response.headers:
        return None
    raise AssertionError(f"{response.status_code}: {response.text[:500]}")
