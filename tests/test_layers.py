"""The shape of the code, checked by reading it: imports point one way, and modules and workflow
functions stay small enough to read.

cli → api, worker → workflows → activities → t2m (the vocabulary, `t2m.vocabulary`, at the bottom).
"""

from __future__ import annotations

import ast
import subprocess
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
    allowed = set(sys.stdlib_module_names) | {"pydantic", "__future__", "t2m"}
    for path in (ROOT / "t2m" / "vocabulary").glob("*.py"):
        assert imported(path) <= allowed, path.name
        modules = {
            n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)
        }
        inside = {m for m in modules if m and m.split(".")[0] == "t2m"}
        assert all(m.startswith("t2m.vocabulary.") for m in inside), (path.name, inside)


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
    """A workflow's state and steps are composed (one `RunState`, helpers that receive it), so
    a reader follows every call without climbing a class hierarchy across files."""
    classes = workflow_classes()
    inheriting = {name: bases for name, bases in classes.items() if set(bases) & set(classes)}
    assert inheriting == {}
    assert "SceneSteps" in classes and "VideoWorkflow" in classes  # the checker sees them


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> list[tuple[str, str]]:
    """(module, name) for every `from module import name` and `import module` in `path` (lazy
    ones too) of a project module; `name` is "" for a plain import or a submodule."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom) and node.module in known and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub, "") if sub in known else (node.module, alias.name))
    return found


def project_imports() -> dict[str, list[tuple[str, str]]]:
    paths = {module_name(p): p for p in modules()}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def test_no_module_imports_a_private_name_of_another() -> None:
    private = {
        name: [f"{module}.{what}" for module, what in found if what.startswith("_")]
        for name, found in project_imports().items()
    }
    assert {name: names for name, names in private.items() if names} == {}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    """Lazy imports count: a cycle broken only by importing inside a function is still one."""
    graph = {name: {m for m, _ in found} - {name} for name, found in project_imports().items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def kind_of(call: ast.Call) -> str:
    return next((ast.unparse(k.value) for k in call.keywords if k.arg == "type"), "")


def test_every_error_crossing_temporal_names_its_kind() -> None:
    """Every ApplicationError the activities and workflows raise (or subclass) has a `type` from
    `t2m.errors.ErrorKind`: the API, the CLI and retry decisions compare against its members."""
    loose = []
    for path in [*(ROOT / "activities").rglob("*.py"), *(ROOT / "workflows").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        subclasses = {
            c.name
            for c in ast.walk(tree)
            if isinstance(c, ast.ClassDef) and "ApplicationError" in map(ast.unparse, c.bases)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = ast.unparse(node.func)
            in_subclass = called == "super().__init__" and subclasses
            if called == "ApplicationError" or in_subclass:
                kind = kind_of(node)
                if not (kind.startswith("ErrorKind.") or kind.endswith(".kind")):
                    loose.append(f"{path.name}:{node.lineno} type={kind or None}")
    assert loose == []


def test_the_supervisor_of_t2m_up_does_not_load_the_worker() -> None:
    """`t2m up` lives as long as the stack beside the worker it runs: importing the worker (for
    three constants) cost it litellm, 5.5 s of CPU at every start and 270 MB instead of 67."""
    code = "import sys, cli.stack; print(sorted({'litellm', 'worker', 'manim'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_worker_imports_litellm_only_for_its_first_model_call() -> None:
    """`import litellm` was ~80% of a worker's start (~4 s of CPU): a worker restarted after a
    crash polls that much sooner, and a render host that never calls a model never pays it. The
    first call imports it, with the offline provider registered."""
    code = (
        "import asyncio, sys, worker\n"
        "from t2m.authoring.llm import ModelClient\n"
        "print('litellm' in sys.modules)\n"
        "hi = [{'role': 'user', 'content': 'hi'}]\n"
        "print(asyncio.run(ModelClient().complete('offline/templates', hi)).text)\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "False",
        "The offline model only answers t2m's own prompts.",
        "True",
    ]


MEDIA_MODULES = ("compose", "probe", "speech_audio")
"""The modules that open media files (PyAV); they run inside media jails (`t2m/media/jail_main.py`)."""


def decoders(module: str) -> set[str]:
    """The top-level functions of `t2m/media/<module>.py` that open a media file, directly or
    through another of them."""
    tree = ast.parse((ROOT / "t2m" / "media" / f"{module}.py").read_text())
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    calls = {
        name: {ast.unparse(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}
        for name, node in functions.items()
    }
    found = {name for name, called in calls.items() if "av.open" in called}
    while grown := {n for n, called in calls.items() if called & found} - found:
        found |= grown
    return found


def test_the_worker_opens_no_media_file_outside_a_jail() -> None:
    """A render's video (and a provider's audio) is the attacker's file: only code running in a
    media jail decodes it (`t2m.media.jailed`), never an activity or the API in the worker's
    or the API's own process."""
    opening = {m: decoders(m) for m in MEDIA_MODULES}
    assert {"sample_frames", "thumbnail", "video_duration"} <= opening["compose"]
    jailed = {ROOT / "t2m" / "media" / f"{m}.py" for m in (*MEDIA_MODULES, "jail_main")}
    jailed.add(ROOT / "t2m" / "render" / "runner.py")  # the render jail's own program
    calls = []
    for path in (p for p in modules() if p not in jailed):
        tree = ast.parse(path.read_text())
        aliases: dict[str, str] = {}  # local name: media module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "t2m.media":
                aliases |= {a.asname or a.name: a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("t2m.media."):
                module = (node.module or "").rsplit(".", 1)[1]
                calls += [
                    f"{path.name}: {a.name}"
                    for a in node.names
                    if a.name in opening.get(module, ())
                ]
        calls += [
            f"{path.name}: {n.value.id}.{n.attr}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.attr in opening.get(aliases.get(n.value.id, ""), ())
        ]
    assert calls == []
