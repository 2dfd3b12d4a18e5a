"""What the JupyterLab "Deploy cell" dialog proposes: the inputs and outputs of a cell.

Runs in the kernel, so the guess can look at the values the notebook has."""

from __future__ import annotations

import ast
import builtins
import types
from typing import Any

from ..types.infer import kind_of
from .capture import free_names

TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def assigned_names(source: str) -> list[str]:
    """Names the cell binds at its top level by assignment, in order."""
    names: list[str] = []
    for statement in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
            targets = [statement.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name) and node.id not in names:
                    names.append(node.id)
    return names


def _is_input(name: str, namespace: dict[str, Any]) -> bool:
    """Data the caller sends, not code the cell calls: functions, classes and modules stay
    in the snapshot."""
    if name not in namespace:
        return not hasattr(builtins, name)
    value = namespace[name]
    return not (callable(value) or isinstance(value, types.ModuleType))


def _typed(name: str, namespace: dict[str, Any]) -> str:
    """`x:float`, `x:ndarray[float32,(-1,4)]`: the kind the value has, as a pin infers it."""
    if name not in namespace:
        return name
    value = namespace[name]
    kind = TYPES.get(type(value)) or kind_of(value)
    return f"{name}:{kind}" if kind != "any" else name


def guess(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """{"inputs": ["x1:float", ...], "outputs": [...]} for a cell's source (magic lines off)."""
    body = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
    try:
        reads, outputs = free_names(body), assigned_names(body)
    except SyntaxError as exc:
        return {"inputs": [], "outputs": [], "error": f"the cell does not parse: {exc}"}
    inputs = [_typed(n, namespace) for n in reads if _is_input(n, namespace)]
    return {"inputs": inputs, "outputs": outputs}
