"""The shape of the code, checked by reading it: imports point one way, and modules and workflow
functions stay small enough to read.

cli → api, worker → workflows → activities → t2m (the vocabulary, `t2m.models`, at the bottom).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("t2m", "workflows", "activities", "api", "cli")
FORBIDDEN: dict[str, set[str]] = {
    "t2m": {"temporalio", "workflows", "activities", "api", "worker", "cli"},
    "activities": {"workflows", "api", "worker", "cli"},
    "workflows": {"api", "worker", "cli"},
    "api": {"activities", "worker", "cli"},
}
MAX_MODULE_LINES = 400
MAX_WORKFLOW_FUNCTION_LINES = 60


def modules() -> list[Path]:
    files = [ROOT / "worker.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def imported(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported(path) & FORBIDDEN[layer])
        for path in (ROOT / layer).rglob("*.py")
        if imported(path) & FORBIDDEN[layer]
    }
    assert wrong == {}, f"{layer}/ must not import {sorted(FORBIDDEN[layer])}"


def test_the_vocabulary_needs_only_pydantic_and_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"pydantic", "__future__"}
    assert imported(ROOT / "t2m" / "models.py") <= allowed


def test_the_rule_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from workflows.client import connect\n    import api.main\n")
    assert imported(sample) == {"workflows", "api"}


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_workflow_functions_stay_short() -> None:
    long = {}
    for path in (ROOT / "workflows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_WORKFLOW_FUNCTION_LINES:
                    long[f"{path.name}:{node.name}"] = length
    assert long == {}


def workflow_classes() -> dict[str, list[str]]:
    """Every class in workflows/ by name, with the names of its bases."""
    classes: dict[str, list[str]] = {}
    for path in (ROOT / "workflows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [ast.unparse(b).split(".")[-1] for b in node.bases]
    return classes


def test_no_workflow_class_inherits_workflow_code() -> None:
    """A workflow's state and steps are composed (one `JobState`, helpers that receive it), so
    a reader follows every call without climbing a class hierarchy across files."""
    classes = workflow_classes()
    inheriting = {name: bases for name, bases in classes.items() if set(bases) & set(classes)}
    assert inheriting == {}
    assert "SceneSteps" in classes and "VideoWorkflow" in classes  # the checker sees them
