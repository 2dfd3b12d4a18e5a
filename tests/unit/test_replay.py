"""The replay verdict, as a function of what the instance answered."""

from __future__ import annotations

import json

import pytest

from jupyter_deploy.supervisor.replay import judge, same


def answer(output: object) -> bytes:
    return json.dumps({"output": output}).encode()


CELL_ERROR = json.dumps({"error_name": "ZeroDivisionError", "error_message": "division by zero",
                         "traceback": ["  2 | total = a / b", "ZeroDivisionError"]}).encode()


@pytest.mark.parametrize(("case", "expected", "status", "body", "verdict", "diff"), [
    ("the same output", {"total": 5}, 200, answer({"total": 5}), "passed", ""),
    ("floats within the tolerance", {"x": 0.1 + 0.2}, 200, answer({"x": 0.3}), "passed", ""),
    ("NaN is NaN", {"x": float("nan")}, 200, b'{"output": {"x": NaN}}', "passed", ""),
    ("a bool is not a number", {"x": True}, 200, answer({"x": 1}), "failed",
     "output.x: notebook true, node 1"),
    ("a scalar differs", {"total": 5}, 200, answer({"total": 6}), "failed",
     "output.total: notebook 5, node 6"),
    ("an output is missing", {"total": 5}, 200, answer({}), "failed",
     "output.total: notebook 5, node (missing)"),
    ("an output is extra", {"total": 5}, 200, answer({"total": 5, "x": 1}), "failed",
     "output.x: notebook (missing), node 1"),
    ("a structure differs: a unified diff", {"y": [1, 2, 3]}, 200, answer({"y": [1, 2, 4]}),
     "failed", "--- notebook output.y\n+++ node output.y\n@@ -2,4 +2,4 @@\n  1,\n  2,\n- 3\n+ 4\n ]"),
    ("the cell raised", {"total": 5}, 500, CELL_ERROR, "failed",
     "the cell raised ZeroDivisionError: division by zero\n  2 | total = a / b\nZeroDivisionError"),
    ("a gateway-style error", {"total": 5}, 502, b'{"error": {"message": "upstream closed"}}',
     "failed", "the instance answered 502: upstream closed"),
    ("not JSON", {"total": 5}, 500, b"oops", "failed", "the instance answered 500: oops"),
    ("200 without an output object", {"total": 5}, 200, b'{"output": 3}', "failed",
     'the instance answered 200: {"output": 3}'),
])
def test_judge(case, expected, status, body, verdict, diff):
    assert judge(expected, status, body) == {"status": verdict, "diff": diff}, case


def test_long_diffs_are_capped():
    expected = {f"o{i}": i for i in range(500)}
    result = judge(expected, 200, answer({k: v + 1 for k, v in expected.items()}))
    assert result["status"] == "failed"
    assert len(result["diff"]) < 4100 and result["diff"].endswith("more lines)")


@pytest.mark.parametrize(("a", "b", "equal"), [
    (1, 1.0, True), ([1, [2.0]], [1, [2]], True), ({"a": 1}, {"a": 1, "b": 2}, False),
    ([1, 2], [1, 2, 3], False), (False, 0, False), ("x", "x", True), (None, None, True)])
def test_same(a, b, equal):
    assert same(a, b) is equal
