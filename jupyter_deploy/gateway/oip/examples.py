"""A node's example input as an Open Inference Protocol request: its JSON, a curl of
`/v2/models/{model}/infer` and a tritonclient snippet, ready to paste."""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from .tensors import DTYPE_OF, Spec, count, specs_of, unpack


def request(inputs: list[dict[str, str]], example: dict[str, Any]) -> dict[str, Any] | None:
    """The OIP request of a native example input; None when part of it has no tensor form."""
    tensors = []
    for spec in specs_of(inputs):
        value = example.get(spec.field)
        if value is None:
            continue
        if spec.form == "unmapped":
            return None
        shape, data = _tensor(spec, value)
        datatype = spec.datatype if spec.datatype != "ANY" else "FP64"
        if spec.form == "array" and isinstance(value, dict):
            datatype = _datatype_of(value["dtype"])
        tensors.append({"name": spec.name, "shape": shape, "datatype": datatype,
                        "data": data})
    return {"inputs": tensors}


def _datatype_of(dtype: str) -> str:
    return next(datatype for datatype, name in DTYPE_OF.items() if name == dtype)


def _tensor(spec: Spec, value: Any) -> tuple[list[int], list[Any]]:
    if spec.form == "array":
        if isinstance(value, dict):  # the packed form: dtype, shape, base64 data
            data = unpack(_datatype_of(value["dtype"]), base64.b64decode(value["data"]))
            return list(value["shape"]), data
        shape: list[int] = []
        level = value
        while isinstance(level, list):
            shape.append(len(level))
            level = level[0] if level else None
        flat: list[Any] = []
        _flatten(value, flat)
        return shape, flat
    if spec.form == "column":
        items = [row.get(spec.column) for row in value]
    else:
        items = [value] if spec.form == "scalar" else list(value)
    if spec.element == "bytes":
        items = [base64.b64decode(item).decode("utf-8", "replace") for item in items]
    return [len(items)], items


def _flatten(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten(item, out)
    else:
        out.append(value)


def curl(url: str, body: dict[str, Any], key: str | None) -> str:
    """A curl command line; `key` a shell variable (`$NODE_KEY`) or None (public)."""
    auth = f'-H "Authorization: Bearer {key}" ' if key else ""
    return (f"curl {auth}-H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))} {url}")


def tritonclient(address: str, model: str, body: dict[str, Any], key: str | None) -> str:
    """Python calling the model with tritonclient's HTTP client (`pip install
    'tritonclient[http]'`); `key` names an environment variable, or None (public)."""
    lines = ["import numpy as np", "import tritonclient.http as httpclient"]
    if key:
        lines.insert(0, "import os")
    lines += ["", f"client = httpclient.InferenceServerClient({address!r})", "inputs = []"]
    for tensor in body["inputs"]:
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if datatype == "BYTES":
            array = f"np.array({[str(v).encode() for v in tensor['data']]!r}, dtype=object)"
        else:
            array = f"np.array({tensor['data']!r}, dtype={DTYPE_OF[datatype]!r})"
        if count(shape) != len(tensor["data"]) or len(shape) != 1:
            array += f".reshape({shape!r})"
        lines += [f"tensor = httpclient.InferInput({name!r}, {shape!r}, {datatype!r})",
                  f"tensor.set_data_from_numpy({array})", "inputs.append(tensor)"]
    headers = f', headers={{"Authorization": "Bearer " + os.environ[{key.lstrip("$")!r}]}}' \
        if key else ""
    lines += [f"result = client.infer({model!r}, inputs{headers})",
              "print({o['name']: result.as_numpy(o['name']) for o in "
              "result.get_response()['outputs']})"]
    return "\n".join(lines)
