"""The static check of generated scene code: fast, clear feedback for the fixer on code that could
never be allowed (imports outside an allow-list, escapes through dunders, built attribute names,
names manim re-exports from the standard library). It closes the cheap bypasses but is not the
boundary: the jail is (`t2m.render.sandbox`, `t2m.jail.bwrap`).
"""

from __future__ import annotations

import ast
import re

from t2m.render.static_names import DANGEROUS_NAMES, MANIM_REEXPORTS, reexport_problem

ALLOWED_MODULES = frozenset(
    {
        "manim", "math", "cmath", "numpy", "random", "itertools", "functools", "operator",
        "collections", "copy", "enum", "dataclasses", "fractions", "string", "typing",
        "__future__", "colour",
    }
)  # fmt: skip
FORBIDDEN_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr",
        "setattr", "delattr", "input", "breakpoint", "exit", "quit", "help", "memoryview",
        "__builtins__", "os", "sys", "subprocess", "socket", "shutil", "importlib", "builtins",
        "ctypes", "pickle",
    }
)  # fmt: skip
# Attributes that reach the OS or files from allow-listed modules: `typing.sys`,
# `manim.utils.file_ops.os`, `manim.utils.commands.capture`, `np.ctypeslib`, numpy's file I/O,
# `np.f2py` (runs compilers), `typing.get_type_hints` (evaluates annotation strings).
FORBIDDEN_ATTRIBUTES = FORBIDDEN_NAMES | frozenset(
    {
        "modules", "system", "popen", "capture", "file_ops", "commands", "ctypeslib", "fromfile",
        "tofile", "DataSource", "savetxt", "loadtxt", "genfromtxt", "fromregex", "memmap", "load",
        "save", "savez", "savez_compressed", "npyio", "lib", "f2py", "get_type_hints",
        "ForwardRef",
    }
)  # fmt: skip
# Callables whose string arguments name attributes (`attrgetter("__globals__")`) or format
# fields (`"{0.__class__}".format(x)`).
ATTRIBUTE_STRING_CALLS = frozenset(
    {"attrgetter", "methodcaller", "format", "format_map", "vformat", "get_field"}
)
# Of those, the ones called only directly with constant strings: an alias, a reference or a
# built string (`attrgetter("op" + "en")`) would hide the attribute from this check.
DIRECT_ONLY_CALLS = frozenset({"attrgetter", "methodcaller", "vformat", "get_field"})
ALLOWED_DUNDERS = frozenset({"__init__"})
ALLOWED_DUNDER_NAMES = frozenset({"__name__"})  # `if __name__ == "__main__":`


class CodeRejected(ValueError):
    """The code failed the static check; the message names the line and the rule."""


def static_check(code: str) -> None:
    """Raise CodeRejected unless `code` only imports allow-listed modules and avoids escapes.

    Fast feedback for the fixer, not the boundary (the jail is): it rejects what a scene never
    needs and the cheap escapes seen so far.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise CodeRejected(f"SyntaxError: line {e.lineno}: {e.msg}") from None
    problems: list[str] = []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        problems += [f"line {line}: {p}" for p in _problems(node) + _reference(node, called)]
    if not any(isinstance(n, ast.ClassDef) and n.bases for n in tree.body):
        problems.append("no Scene subclass is defined at the top level")
    if problems:
        raise CodeRejected("Code rejected by the static check:\n" + "\n".join(problems))


def _problems(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [
            _unavailable(a.name) or f"import of {a.name!r} is not allowed"
            for a in node.names
            if a.name.split(".")[0] not in ALLOWED_MODULES
        ]
    if isinstance(node, ast.ImportFrom):
        if node.level or (node.module or "").split(".")[0] not in ALLOWED_MODULES:
            return [
                _unavailable(node.module or "") or f"import from {node.module!r} is not allowed"
            ]
        return [
            reexport_problem(a.name, node.module or "")
            or f"import of name {a.name!r} from {node.module!r} is not allowed"
            for a in node.names
            if a.name.startswith("_")
            or a.name in FORBIDDEN_ATTRIBUTES | DANGEROUS_NAMES
            or (a.name in MANIM_REEXPORTS and (node.module or "").split(".")[0] == "manim")
            or (a.name in DIRECT_ONLY_CALLS and a.asname not in (None, a.name))
        ]
    if isinstance(node, ast.Name):
        if node.id in FORBIDDEN_NAMES:
            return [f"use of {node.id!r} is not allowed"]
        if node.id in DANGEROUS_NAMES:
            return [f"use of {node.id!r} is not allowed (it reaches processes, files or code)"]
        if _is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
            return [f"dunder name {node.id!r} is not allowed"]
    if isinstance(node, ast.Attribute):
        return _attribute_problems(node)
    if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
        return ["allow_pickle is not allowed"]
    if isinstance(node, ast.Call):
        return _call_problems(node)
    return []


def _reference(node: ast.AST, called: set[int]) -> list[str]:
    """A call that names attributes by string, referred to other than as a direct call."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    if name in DIRECT_ONLY_CALLS and id(node) not in called and not isinstance(node, ast.alias):
        return [f"{name} may only be called directly, with constant strings"]
    return []


def _unavailable(module: str) -> str:
    """The message for a Manim plugin (`manim_physics`, `manim_slides`…): not installed, and why
    it fails, rather than a bare refusal. Empty for other modules."""
    top = module.split(".")[0]
    if not top.startswith("manim_"):
        return ""
    return (
        f"plugin {top} is not installed: only manim itself is available, "
        "draw it with manim's own objects"
    )


def _attribute_problems(node: ast.Attribute) -> list[str]:
    if _is_dunder(node.attr):
        return [f"dunder attribute {node.attr!r} is not allowed"]
    # A scene's own helpers may be private (`self._dots`); other objects' private parts are how
    # modules leak `os` (`random._os`).
    own = isinstance(node.value, ast.Name) and node.value.id == "self"
    if node.attr.startswith("_") and not own and node.attr not in ALLOWED_DUNDERS:
        return [f"private attribute {node.attr!r} is not allowed"]
    if node.attr in FORBIDDEN_ATTRIBUTES or node.attr in DANGEROUS_NAMES:
        return [f"attribute {node.attr!r} is not allowed"]
    return []


def _call_problems(node: ast.Call) -> list[str]:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in ATTRIBUTE_STRING_CALLS:
        return []
    named = node.args if name == "attrgetter" else node.args[:1]
    if name in DIRECT_ONLY_CALLS and not all(_is_str(a) for a in named):
        return [f"{name}() with a built (non-constant) string is not allowed"]
    if (
        isinstance(func, ast.Attribute)
        and name in ("format", "format_map")
        and not _is_str(func.value)
    ):
        return [f"{name}() on a built (non-constant) string is not allowed; use an f-string"]
    strings = [a.value for a in node.args if isinstance(a, ast.Constant)]
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant):
        strings.append(func.value.value)  # "{0.__class__}".format(x)
    for s in strings:
        if not isinstance(s, str):
            continue
        if re.search(r"(^|[.{\[])_", s):
            return [f"{name}() with a private or dunder name ({s!r}) is not allowed"]
        if FORBIDDEN_ATTRIBUTES.intersection(re.split(r"[^\w]+", s)):
            return [f"{name}() naming a forbidden attribute ({s!r}) is not allowed"]
    return []


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS
