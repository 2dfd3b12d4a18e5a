"""The package's layout stays readable: small modules and functions, and README's "Layout"
section naming every folder of the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jupyter_deploy"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts)


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in sources()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_readme_layout_names_every_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    folders = {p.parent.name for p in PACKAGE.rglob("__init__.py")
               if "labextension" not in p.parts} - {PACKAGE.name}
    mentioned = set(re.findall(r"\b(\w+)/", section))
    assert folders <= mentioned, f"README's Layout lacks {sorted(folders - mentioned)}"
    named = set(re.findall(r"^\s{2,}(\w+)/", section, re.M))  # the package's own entries
    assert named <= folders, (
        f"README's Layout names folders the package lacks: {sorted(named - folders)}")
