"""The replay check: before the first instance of a node's generation enters balancing, it
runs the checkpoint's pin-time example input, and its output is compared with the one the
notebook computed. A cell whose state changed while it ran at pin time, or that depends on
something the checkpoint did not capture, answers differently: the diff says where.

Comparison and diff are pure functions; `Replays` runs them for the supervisor.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from ..gateway.routing import MAX_BYTES
from ..gateway.upstream import Pool
from ..http.client import ResponseTooLarge
from ..models import Instance, Node
from ..store.sqlite import Store

REL_TOL, ABS_TOL = 1e-9, 1e-12
MAX_DIFF_CHARS = 4000
REPLAY_HEAD = b"POST /replay HTTP/1.1\r\nHost: instance\r\nContent-Type: application/json\r\n"


def same(expected: Any, actual: Any) -> bool:
    """JSON values equal up to a float tolerance; NaN equals NaN; lists and dicts recursively."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, float) and isinstance(actual, float) and \
                math.isnan(expected) and math.isnan(actual):
            return True
        return math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same, expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(value, actual[key]) for key, value in expected.items())
    return bool(expected == actual)


def output_diff(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    """One paragraph per output field that differs: scalars side by side, structures as a
    unified diff of their pretty-printed JSON."""
    parts = []
    for name in list(expected) + [n for n in actual if n not in expected]:
        field = f"output.{name}"
        if name not in actual:
            parts.append(f"{field}: notebook {_short(expected[name])}, node (missing)")
        elif name not in expected:
            parts.append(f"{field}: notebook (missing), node {_short(actual[name])}")
        elif same(expected[name], actual[name]):
            continue
        elif isinstance(expected[name], (list, dict)) or isinstance(actual[name], (list, dict)):
            shown = _aligned(expected[name], actual[name])
            lines = difflib.unified_diff(_pretty(expected[name]), _pretty(shown),
                                         f"notebook {field}", f"node {field}", n=2, lineterm="")
            parts.append("\n".join(lines))
        else:
            parts.append(f"{field}: notebook {_short(expected[name])}, "
                         f"node {_short(actual[name])}")
    return _cap("\n".join(parts))


def judge(example_output: dict[str, Any], status: int, body: bytes) -> dict[str, str]:
    """What the instance answered, against the notebook's output: passed or failed, and why."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("output"), dict):
        diff = output_diff(example_output, answer["output"])
        return {"status": "failed" if diff else "passed", "diff": diff}
    if isinstance(answer, dict) and "error_name" in answer:
        trace = "\n".join(answer.get("traceback") or [])
        diff = f"the cell raised {answer['error_name']}: {answer.get('error_message', '')}"
        return {"status": "failed", "diff": _cap(f"{diff}\n{trace}".rstrip())}
    detail = answer.get("error", {}).get("message") if isinstance(answer, dict) and \
        isinstance(answer.get("error"), dict) else body[:500].decode(errors="replace")
    return {"status": "failed", "diff": f"the instance answered {status}: {detail}"}


def _aligned(expected: Any, actual: Any) -> Any:
    """`actual` with the parts equal within the tolerance written as in `expected`, so that
    the diff shows only what differs."""
    if same(expected, actual):
        return expected
    if isinstance(expected, list) and isinstance(actual, list):
        return [_aligned(e, a) for e, a in zip(expected, actual, strict=False)] + actual[len(expected):]
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _aligned(expected[k], v) if k in expected else v for k, v in actual.items()}
    return actual


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True).splitlines()


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _cap(text: str) -> str:
    if len(text) <= MAX_DIFF_CHARS:
        return text
    rest = text[MAX_DIFF_CHARS:].count("\n") + 1
    return text[:MAX_DIFF_CHARS] + f"\n… ({rest} more lines)"


class Replays:
    """One replay per node and generation; the supervisor asks whether an instance that is
    ready may enter balancing."""

    def __init__(self, store: Store, emit: Callable[[str, str | None, str | None, str], None],
                 timeout_s: float = 15.0, token: Callable[[Instance], str] = lambda i: "") -> None:
        self.store = store
        self.emit = emit
        self.token = token  # what a request to the instance carries (Runtime.token)
        self.timeout_s = timeout_s
        self._done: dict[str, tuple[str, str]] = {}  # node -> (generation, status) replayed
        self._locks: dict[str, asyncio.Lock] = {}

    def blocks(self, node: Node) -> bool:
        """A strict node whose replay failed starts no instance until it is updated."""
        done = self._done.get(node.name)
        return node.strict and done == (node.generation, "failed")

    def forget(self, name: str) -> None:
        self._done.pop(name, None)
        self._locks.pop(name, None)

    async def admit(self, node: Node, instance: Instance) -> bool:
        """Replay on `instance` unless its generation was replayed already; whether it may
        enter balancing. Instances starting together wait for the first one's result."""
        if instance.generation != node.generation:  # the node was updated: it is replaced
            return True
        if node.from_image:  # no checkpoint, no example to replay
            return True
        async with self._locks.setdefault(node.name, asyncio.Lock()):
            done = self._done.get(node.name)
            if done is None or done[0] != instance.generation:
                result = await self._replay(node, instance)
                if instance.generation != node.generation:  # updated meanwhile: not current
                    return True
                self._done[node.name] = (instance.generation, result["status"])
                node.replay = result
                self.store.save_node(node)
                self.emit(node.name, instance.id, None, _event(node, result))
        return not self.blocks(node)

    async def _replay(self, node: Node, instance: Instance) -> dict[str, Any]:
        example = self.store.checkpoint(node.checkpoint).get("example") or {}
        result: dict[str, Any] = {"checkpoint": node.checkpoint, "instance": instance.id}
        for part in ("input", "output"):
            if not isinstance(example.get(part), dict):
                reason = (f"the checkpoint has no example {part} (the notebook's values "
                          "could not be saved as JSON)")
                return {"status": "skipped", "diff": "", "reason": reason,
                        "checked_at": time.time(), **result}
        body = json.dumps({"input": example["input"]}).encode()
        pool = Pool(instance.host, instance.port or 0, MAX_BYTES, token=self.token(instance))
        try:
            async with asyncio.timeout(self.timeout_s):
                status, _, answer = await pool.request(REPLAY_HEAD, body)
            verdict = await asyncio.to_thread(judge, example["output"], status, answer)
        except TimeoutError:
            verdict = {"status": "failed",
                       "diff": f"the cell did not answer within {self.timeout_s:g} s"}
        except ResponseTooLarge as exc:
            verdict = {"status": "failed", "diff": f"the output is {exc.size} bytes, more "
                       f"than the {MAX_BYTES} allowed"}
        finally:
            pool.close()
        return {**verdict, "checked_at": time.time(), **result}


def _event(node: Node, result: dict[str, Any]) -> str:
    """The node event that tells the result."""
    if result["status"] == "skipped":
        return f"replay skipped: {result['reason']}"
    if result["status"] == "passed":
        return "replay passed: the node's output on the example input is the notebook's"
    action = ("strict: no instance enters balancing until the node is updated (a new "
              "checkpoint, or strict: false)" if node.strict else
              "not strict: the node serves anyway")
    return (f"replay failed: the node's output on the example input is not the notebook's "
            f"({action})\n{result['diff']}")
