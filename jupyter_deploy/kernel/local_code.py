"""The local code a checkpoint ships: modules and packages that no installed distribution
provides (a `helper.py` or a package beside the notebook), with the local code they import
in turn. Packages go whole, so relative imports inside them work in the instance.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import site
import subprocess
import sys
import sysconfig
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import InvalidInput

MAX_BYTES = 64 * 1024 * 1024  # local code is source, not data: past this, something is off
OWN = ("jupyter_deploy",)  # every instance has it
NOT_SHIPPED = ("__pycache__",)
NOT_SHIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass
class LocalCode:
    """What ships: files by relative path, one entry per module, and what the files import."""

    files: dict[str, bytes] = field(default_factory=dict)
    modules: list[dict[str, Any]] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)


@functools.lru_cache(maxsize=1)
def installed_paths() -> tuple[str, ...]:
    """Where this interpreter finds modules on its own, whatever the folder or PYTHONPATH:
    what is found there is installed; what is found elsewhere is the notebook's own code."""
    try:
        probe = subprocess.run([sys.executable, "-I", "-c", "import sys, json; "
                                "print(json.dumps(sys.path))"],
                               capture_output=True, text=True, timeout=60, check=True)
        paths = json.loads(probe.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):  # what Python says it installs
        paths = [*sysconfig.get_paths().values(), *site.getsitepackages()]
    paths = [*paths, site.getusersitepackages()]
    return tuple(sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)}))


def _installed(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in installed_paths())


def _refuse(module: str, why: str) -> InvalidInput:
    return InvalidInput(f"the cell needs module `{module}`, which {why}", field="state")


def _location(top: str) -> tuple[str | None, list[str]] | None:
    """(file, package folders) of a top-level module; None when it cannot be found."""
    module = sys.modules.get(top)
    if module is not None:
        return getattr(module, "__file__", None), list(getattr(module, "__path__", []) or [])
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return spec.origin, list(spec.submodule_search_locations or [])


def _files_of(top: str, origin: str | None, folders: list[str]) -> dict[str, Path] | None:
    """The files that make up `top`, by path relative to the code folder; None when it is
    installed (found where the interpreter looks on its own)."""
    if folders:
        if all(_installed(folder) for folder in folders):
            return None
        files: dict[str, Path] = {}
        for folder in folders:
            for path in sorted(Path(folder).rglob("*")):
                relative = path.relative_to(folder)
                if path.is_file() and not any(
                        part.startswith(".") or part in NOT_SHIPPED for part in relative.parts) \
                        and path.suffix not in NOT_SHIPPED_SUFFIXES:
                    files[f"{top}/{relative.as_posix()}"] = path
        return files
    if origin is None or not os.path.isfile(origin):
        if top in sys.modules:
            raise _refuse(top, "has no file to ship: it was made while the notebook ran; "
                          "define what the cell needs in the notebook instead")
        raise _refuse(top, "cannot be found")
    if _installed(origin):
        return None
    if not origin.endswith(".py"):
        raise _refuse(top, f"is compiled ({origin}) and cannot be shipped with the "
                      "checkpoint: install it as a distribution (pip install)")
    return {f"{top}.py": Path(origin)}


def _read(top: str, paths: dict[str, Path], budget: int) -> dict[str, bytes]:
    """The files' bytes, sizes checked first: a data file left in a package folder is
    refused, not read into the kernel's memory."""
    size = sum(path.stat().st_size for path in paths.values())
    if size > budget:
        raise _refuse(top, f"is local code of {size >> 20} MB, past the {MAX_BYTES >> 20} MB "
                      "a checkpoint ships with the rest: keep data files out of the package "
                      "folder, or install it as a distribution")
    return {name: path.read_bytes() for name, path in paths.items()}


def _imports(files: dict[str, bytes]) -> set[str]:
    """Top-level names the shipped Python files import (relative imports stay inside)."""
    names: set[str] = set()
    for name, content in files.items():
        if not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(content)
        except (SyntaxError, ValueError):
            continue  # it would not import in the kernel either
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def collect(needed: set[str], optional: set[str]) -> LocalCode:
    """The local code among top-level modules: `needed` ones (the pinned state refers to
    them) must ship; `optional` ones (only imported by source) are left out when missing.

    Where a module is found decides, not its name: a `utils.py` beside the notebook is
    local even when some distribution also installs a top-level `utils`."""
    code = LocalCode()
    queue = sorted(needed) + sorted(optional - needed)
    required, seen = set(needed), set()
    while queue:
        top = queue.pop(0)
        if top in seen or not _candidate(top):
            continue
        seen.add(top)
        location = _location(top)
        if location is None:
            if top in required:
                raise _refuse(top, "cannot be found")
            continue
        paths = _files_of(top, *location)
        if paths is None:
            continue
        files = _read(top, paths, MAX_BYTES - sum(map(len, code.files.values())))
        code.files.update(files)
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        code.modules.append({"module": top, "files": sorted(files),
                             "sha256": digest.hexdigest()})
        imported = _imports(files)
        code.imports |= imported
        queue.extend(sorted(imported - seen))
    code.modules.sort(key=lambda m: m["module"])
    for name in changed_since_import({m["module"] for m in code.modules}):
        warnings.warn(f"{name} changed on disk since the notebook imported it: the checkpoint "
                      "ships the file as it is now, not the code the cell just ran; "
                      "importlib.reload it (or restart the kernel) and pin again",
                      stacklevel=3)
    return code


def changed_since_import(tops: set[str]) -> list[str]:
    """Files of imported local modules that differ from what was compiled at import: the
    notebook runs the old code, the instance would run the new. Told by the .pyc written
    at import; without one (PYTHONDONTWRITEBYTECODE), nothing is said."""
    changed = []
    for name, module in sorted(sys.modules.items()):
        source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
        if name.split(".")[0] not in tops or not source or not cached:
            continue
        try:
            header = Path(cached).read_bytes()[:16]
            stat = os.stat(source)
        except OSError:
            continue  # nothing was written at import: nothing to compare with
        if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:
            continue  # a hash-based .pyc, or none: no time to compare
        recorded = (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little"))
        if recorded != (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF):
            changed.append(os.path.relpath(source))
    return changed


def _candidate(top: str) -> bool:
    """Not the standard library, not this package."""
    return bool(top) and top not in sys.stdlib_module_names and top not in OWN \
        and top not in sys.builtin_module_names and top not in ("__main__", "builtins")
