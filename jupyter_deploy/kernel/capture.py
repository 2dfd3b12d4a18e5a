"""Capture what a cell needs from the interpreter into a checkpoint (runs in the kernel)."""

from __future__ import annotations

import ast
import importlib.metadata
import io
import json
import pickle
import platform
import re
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

import cloudpickle

from ..models import InvalidInput
from ..types import parse_type
from ..types.infer import kind_of
from ..types.values import Mismatch, encode, json_default
from ..worker.snapshot import pack
from . import local_code

MAX_EXAMPLE = 4 * 1024 * 1024  # bytes of JSON kept as a checkpoint's example input or output

# Names IPython keeps in the user namespace for its own bookkeeping.
IPYTHON_NAMES = re.compile(r"(In|Out|get_ipython|exit|quit|_+|_i+|_[ioh]+|_i?\d+|_dh|__builtins__)\Z")
DEFERRED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Reads:
    """Walks a cell in evaluation order and finds the names it reads before binding them
    for sure (a name bound in one branch of an `if` may be read from the notebook's state)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.free: list[str] = []
        self.deferred: set[str] = set()  # read by functions, lambdas, classes, comprehensions

    def load(self, name: str) -> None:
        if name not in self.bound and name not in self.free:
            self.free.append(name)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.load(node.id)
            else:
                self.bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                self.bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign):
            self.visit(node.value)
            for target in node.targets:
                self.visit(target)
        elif isinstance(node, ast.AnnAssign):  # the annotation is evaluated, as a module does
            if node.value is not None:
                self.visit(node.value)
            self.visit(node.annotation)
            if node.value is not None:  # `x: T` alone binds nothing
                self.visit(node.target)
        elif isinstance(node, ast.AugAssign):
            self.visit(node.value)
            if isinstance(node.target, ast.Name):
                self.load(node.target.id)
            self.visit(node.target)
        elif isinstance(node, ast.NamedExpr):
            self.visit(node.value)
            self.visit(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.visit(node.iter)
            self._maybe([node.target, *node.body, *node.orelse])
        elif isinstance(node, (ast.If, ast.While)):
            self.visit(node.test)
            self._maybe([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            self._maybe([*node.body, *node.handlers, *node.orelse])
            for final in node.finalbody:
                self.visit(final)
        elif isinstance(node, (*DEFERRED, ast.ClassDef)):
            self._definition(node)
        elif isinstance(node, COMPREHENSIONS):
            self.visit(node.generators[0].iter)  # evaluated right away, in the cell's scope
            self._deferred_reads(node)
        else:
            for child in ast.iter_child_nodes(node):
                self.visit(child)

    def _maybe(self, nodes: Sequence[ast.AST]) -> None:
        """Code that may not run: what it binds may still come from the notebook's state."""
        bound = set(self.bound)
        for child in nodes:
            self.visit(child)
        self.bound = bound

    def _definition(self, node: ast.AST) -> None:
        # Decorators, defaults and bases run now; the body runs later.
        for expr in getattr(node, "decorator_list", []) + getattr(node, "bases", []):
            self.visit(expr)
        for keyword in getattr(node, "keywords", []):
            self.visit(keyword.value)
        args = getattr(node, "args", None)
        if args is not None:
            for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
                self.visit(default)
        self._deferred_reads(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.bound.add(node.name)

    def _deferred_reads(self, node: ast.AST) -> None:
        local: set[str] = set()
        reads: set[str] = set()
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                (reads if isinstance(child.ctx, ast.Load) else local).add(child.id)
            elif isinstance(child, ast.arg):
                local.add(child.arg)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if child is not node:
                    local.add(child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                local.update(a.asname or a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.Global):
                reads.update(child.names)
        self.deferred |= reads - local


def free_names(source: str) -> list[str]:
    """Names the cell reads that it does not bind first, in the order they are first read."""
    reads = _Reads()
    for statement in ast.parse(source).body:
        reads.visit(statement)
    late = sorted(reads.deferred - reads.bound - set(reads.free))
    return reads.free + late


def _blame(name: str, value: Any) -> str:
    """Why `value` cannot be pickled, naming the global it reaches when that is the cause."""
    try:
        cloudpickle.dumps(value)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is reported
        reason = f"{type(exc).__name__}: {exc}"
    else:
        return ""
    function = value if isinstance(value, types.FunctionType) else None
    if function is not None and function.__module__ == "__main__":
        for global_name in _code_names(function.__code__):
            if global_name in function.__globals__ and global_name != name:
                inner = _blame(global_name, function.__globals__[global_name])
                if inner:
                    return f"it reaches `{global_name}`, which cannot be pickled ({inner})"
    return reason


def _code_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _code_names(const)
    return names


class _ModuleRecorder(pickle.Unpickler):
    """Loads a pickle back and records the modules it imports (what the instance will need)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.modules.add(module)
        found = super().find_class(module, name)
        if module.startswith("cloudpickle") and name == "subimport":
            # a module the state holds (`import helper` in the notebook) comes by name
            def subimport(module_name: str) -> Any:
                self.modules.add(module_name)
                return found(module_name)
            return subimport
        return found


def requirements(modules: set[str]) -> tuple[list[dict[str, str]], list[str]]:
    """Map modules to the installed distributions they come from, pinned to their versions."""
    distributions = importlib.metadata.packages_distributions()
    found: dict[str, dict[str, str]] = {}
    local: list[str] = []
    for top in sorted({m.split(".")[0] for m in modules}):
        if top in sys.stdlib_module_names or top in ("__main__", "builtins", "_io"):
            continue
        names = distributions.get(top)
        if not names:
            local.append(top)
            continue
        for dist in names:
            found[dist] = {"distribution": dist, "version": importlib.metadata.version(dist)}
    return sorted(found.values(), key=lambda r: r["distribution"].lower()), local


def typed(fields: list[dict[str, str]], values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The fields, an `any` one with the kind its value has: an ndarray output stays an
    ndarray for callers, with its own JSON Schema (issue 15)."""
    return [{**f, "type": kind_of(values[f["name"]])} if f["type"] == "any"
            and f["name"] in values else f for f in fields]


def _json_example(fields: list[dict[str, str]], values: Mapping[str, Any], where: str
                  ) -> dict[str, Any] | None:
    """The values as the API sends them (as an instance would: numpy inside an `any` value
    becomes JSON too); None when too big to keep beside the checkpoint."""
    texts: dict[str, str] = {}
    for field in fields:
        name = field["name"]
        value = encode(parse_type(field["type"]), values[name], f"{where}.{name}")
        try:
            texts[name] = json.dumps(value, default=json_default)
        except (TypeError, ValueError, RecursionError):
            raise InvalidInput(
                f"{where} `{name}` holds {_what(values[name])}, which has no JSON form: "
                "convert it in the cell (to a number, str, bool, list, dict, bytes, an "
                f"ndarray or a DataFrame) and declare its type, e.g. `--{where}s {name}:list`",
                field=f"{where}s") from None
    if sum(map(len, texts.values())) > MAX_EXAMPLE:
        return None
    return {name: json.loads(text) for name, text in texts.items()}


def _what(value: Any) -> str:
    """`a set`, `an ndarray of dtype complex128`: the value, as the reader knows it."""
    name = type(value).__name__
    what = f"an {name}" if name[:1] in "aeiou" or name == "ndarray" else f"a {name}"
    dtype = getattr(value, "dtype", None)
    return f"{what} of dtype {dtype}" if dtype is not None and hasattr(value, "shape") else what


def capture(
    name: str,
    source: str,
    user_ns: dict[str, Any],
    inputs: list[dict[str, str]],
    outputs: list[dict[str, str]],
    example_input: dict[str, Any],
) -> tuple[dict[str, Any], bytes]:
    """Build a checkpoint from a cell that has just run in `user_ns`.

    Returns its metadata and the snapshot: the local code the state reaches, then the
    pickled state (exactly the names the cell needs).
    """
    for field in outputs:
        if field["name"] not in user_ns:
            raise InvalidInput(
                f"declared output `{field['name']}` does not exist after the cell ran: "
                "assign it in the cell",
                field="outputs",
            )
    inputs, outputs = typed(inputs, example_input), typed(outputs, user_ns)
    try:
        example = {"input": _json_example(inputs, example_input, "input"),
                   "output": _json_example(outputs, user_ns, "output")}
    except Mismatch as exc:
        raise InvalidInput(f"the example {exc.field.replace('.', ' `', 1)}` does not fit its "
                           f"declared type: {exc.message}",
                           field=exc.field.split(".")[0] + "s") from None
    input_names = {f["name"] for f in inputs}
    needed = [
        n for n in free_names(source)
        if n in user_ns and n not in input_names and not IPYTHON_NAMES.match(n)
    ]
    data = _pickled({n: user_ns[n] for n in needed})
    environment, code = _environment(source, data)
    meta = {  # the service gives it its content address
        "name": name,
        "source": source,
        "inputs": inputs,
        "outputs": outputs,
        "environment": environment,
        "state": needed,
        "example": example,
    }
    return meta, pack(data, code.files)


def _pickled(state: dict[str, Any]) -> bytes:
    try:
        return cloudpickle.dumps(state)
    except Exception:  # noqa: BLE001 - find which variable, and say why
        problems = [(n, _blame(n, v)) for n, v in state.items()]
        problems = [(n, why) for n, why in problems if why]
        detail = "; ".join(f"`{n}`: {why}" for n, why in problems) or "see the traceback"
        raise InvalidInput(
            f"the cell needs state that cannot be pinned: {detail}", field="state"
        ) from None


def _environment(source: str, data: bytes) -> tuple[dict[str, Any], local_code.LocalCode]:
    """What an instance needs besides the state: the interpreter, the distributions (pinned)
    and the local code the state and the cell reach."""
    recorder = _ModuleRecorder(data)
    try:
        recorder.load()
    except Exception as exc:  # noqa: BLE001 - what pickles must load back, or say why
        raise InvalidInput(f"the pinned state does not load back: {type(exc).__name__}: "
                           f"{exc}", field="state") from None
    imported = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    code = local_code.collect({m.split(".")[0] for m in recorder.modules},
                              {m.split(".")[0] for m in imported})
    shipped = {m["module"] for m in code.modules}
    requires, local_modules = requirements(
        {m for m in recorder.modules | imported | code.imports if m.split(".")[0] not in shipped})
    environment: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "requirements": requires,
        "local_modules": sorted({*local_modules, *shipped}),
    }
    if code.modules:  # left out when empty: the same cell keeps its content address
        environment["local_code"] = code.modules
    return environment, code
