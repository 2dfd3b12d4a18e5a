"""The pin's check of a cell declared batchable (`%%deploy pin NAME ... --batch`, issue 18):
run on its example input stacked twice, it must give its example output twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models import InvalidInput
from ..types import parse_type
from ..types.batching import Unbatchable, rows, same, split, stack, stacked


def check_batchable(source: str, user_ns: Mapping[str, Any], inputs: list[dict[str, str]],
                    outputs: list[dict[str, str]], example: Mapping[str, Any]) -> None:
    """Raise InvalidInput, naming the input or output, unless the cell (which has just run on
    `example` in `user_ns`) works row by row on stacked inputs. It runs once more, in a copy
    of the notebook's namespace."""
    names = [f["name"] for f in inputs if stacked(parse_type(f["type"]))]
    if not names:
        raise InvalidInput("a batched cell needs an array, list or DataFrame input to stack "
                           "its callers' rows along: declare one, e.g. "
                           "--inputs x:ndarray[float32,(-1,4)]", field="inputs")
    for field in outputs:
        if not stacked(parse_type(field["type"])):
            raise InvalidInput(f"output `{field['name']}` is {field['type']}: the outputs of a "
                               "batched cell are arrays, lists or DataFrames, split back into "
                               "each caller's rows", field="outputs")
    count = _rows(names, example)
    namespace = dict(user_ns)
    namespace.update(example)
    for name in names:
        namespace[name] = stack([example[name], example[name]])
    try:
        exec(compile(source, "<batch check>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001 - the cell's error is the reason
        raise InvalidInput(f"run on its example input stacked twice ({2 * count} rows), the "
                           f"cell raised {type(exc).__name__}: {exc}", field="batch") from None
    for field in outputs:
        name = field["name"]
        try:
            first, second = split(namespace.get(name), [count, count])
        except Unbatchable as exc:
            raise InvalidInput(f"run on its example input stacked twice ({2 * count} rows), "
                               f"output `{name}` does not split into two callers' rows: "
                               f"{exc}", field="outputs") from None
        if not (same(first, user_ns[name]) and same(second, user_ns[name])):
            raise InvalidInput(f"run on its example input stacked twice, the cell did not give "
                               f"output `{name}` of the example twice: a batched cell must "
                               "treat each row on its own (pin it without --batch)",
                               field="outputs")


def _rows(names: list[str], example: Mapping[str, Any]) -> int:
    """The rows of the example's stacked inputs, which must agree."""
    counts = []
    for name in names:
        try:
            counts.append(rows(example[name]))
        except Unbatchable as exc:
            raise InvalidInput(f"the example of input `{name}`: {exc}", field="inputs") from None
    if len(set(counts)) > 1:
        found = ", ".join(f"{name}: {count}" for name, count in zip(names, counts, strict=True))
        raise InvalidInput("the examples of a batched cell's array, list and DataFrame inputs "
                           f"must have the same number of rows ({found})", field="inputs")
    return counts[0]
