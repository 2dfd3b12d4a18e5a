"""The JupyterLab extension's mirror of the status words, and the Deploy cell dialog's guess."""

from __future__ import annotations

import re
from pathlib import Path

from jupyter_deploy.guess import guess
from jupyter_deploy.models import InstanceStatus, NodeStatus

STATUSES = Path(__file__).resolve().parents[2] / "labextension" / "src" / "statuses.ts"


def ts_enum(name: str) -> dict[str, str]:
    """{MEMBER: "Word"} of `export enum NAME { ... }` in statuses.ts."""
    text = STATUSES.read_text()
    body = re.search(rf"export enum {name} \{{(.*?)\}}", text, re.S)
    assert body, f"no enum {name} in {STATUSES.name}"
    return dict(re.findall(r"(\w+) = '([^']*)'", body.group(1)))


def test_statuses_ts_mirrors_the_python_enums():
    assert ts_enum("NodeStatus") == {s.name: s.value for s in NodeStatus}
    assert ts_enum("InstanceStatus") == {s.name: s.value for s in InstanceStatus}


def test_the_guess_keeps_data_as_inputs_and_assignments_as_outputs():
    namespace = {"x1": 4.0, "x2": 1.5, "predict_one": len, "np": re}
    source = "%%deploy pin predict --inputs x1\nprediction = predict_one(x1, x2)\nn = len(np.x)"
    assert guess(source, namespace) == {
        "inputs": ["x1:float", "x2:float"], "outputs": ["prediction", "n"]}


def test_a_name_the_kernel_lacks_is_an_untyped_input_and_bad_code_says_so():
    assert guess("total = a + b", {"a": 1}) == {"inputs": ["a:int", "b"], "outputs": ["total"]}
    assert "does not parse" in guess("total = (", {})["error"]
