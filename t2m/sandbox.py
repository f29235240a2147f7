"""Generated Manim code is untrusted: a static check for fast feedback, then a render in the jail.

The model writes whatever the request asks for, so every render is treated as an attacker's
program. The boundary is the jail (`t2m.jail`: bubblewrap, an unprivileged uid, no network, a
filesystem with nothing but the runtime and the render's own work dir, limits for the whole jail).
The static check only gives the fixer clear, early messages for code that could never be allowed;
it closes the cheap bypasses but is not relied upon. Error text going back to the fixer and the
user is scrubbed of anything secret-looking as a last belt.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2m import jail, media_jail
from t2m.jail import JailUnavailable, check_jail
from t2m.static_names import DANGEROUS_NAMES, MANIM_REEXPORTS, reexport_problem

__all__ = ["CodeRejected", "JailUnavailable", "RenderResult", "check_jail", "render", "scrub"]

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

# Per quality: the address space of each process and the RSS of the whole jail. FACTS measured
# -ql ≥ 832 MB and -qh ≥ 1280 MB under RLIMIT_AS; leave headroom.
MEMORY_MB = {"low": 1536, "medium": 2048, "high": 3072, "ultra": 6144}
MAX_RESULT_BYTES = 1024**2


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


_SECRET_NAME = re.compile(
    r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|DATABASE_URL|DSN|^AWS_", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/:@]+:[^\s/@]+@", re.IGNORECASE)
_KEY_SHAPES = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_\-]{16,}|\b(?:ghp|gho|xox[abp])[_-][A-Za-z0-9_\-]{16,}"
)
REDACTED = "[redacted]"


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` without the worker's secret-looking env values (names with KEY, SECRET, TOKEN,
    PASSWORD, CREDENTIAL, DATABASE_URL, DSN or AWS_; values of 8+ characters, and the password
    part of URL values), URL credentials (`scheme://user:pass@`) and key-shaped strings."""
    env = os.environ if environ is None else environ
    values: set[str] = set()
    for name, value in env.items():
        if _SECRET_NAME.search(name) and len(value) >= 8:
            values.add(value)
            values.update(m.group(0) for m in _URL_CREDENTIALS.finditer(value))
            values.update(p for p in re.findall(r"://[^\s/:@]+:([^\s/@]+)@", value) if len(p) >= 6)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return _KEY_SHAPES.sub(REDACTED, text)


@dataclass
class RenderResult:
    ok: bool
    video: Path | None
    error: str | None
    layout: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def trim_error(text: str, max_chars: int = 3000) -> str:
    """Keep the end of a traceback, where the cause is, within a size fit for a prompt."""
    text = text.strip()
    return text if len(text) <= max_chars else "…\n" + text[-max_chars:]


def jail_env() -> dict[str, str]:
    """The render's whole environment (nothing of the worker's). TeX runs paranoid: it may only
    open files under the work dir (`openin_any`/`openout_any` = p, TEXMFOUTPUT)."""
    home = jail.JAIL_WORKDIR
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "XDG_CACHE_HOME": "/tmp/cache",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "openin_any": "p",
        "openout_any": "p",
        "TEXMFOUTPUT": home,
        "TEXMFVAR": "/tmp/texmf-var",
        "TEXMFCONFIG": "/tmp/texmf-config",
    }


async def render(code: str, quality: str, workdir: Path, **options: Any) -> RenderResult:
    """Check and render `code` in the jail (`options`: those of `render_in_jail`); a code error
    is a result, not an exception. The video lasts at least `min_seconds` (the scene's
    narration): a shorter scene holds its last frame. It renders the Scene subclass named
    `scene_class`, or when there is none by that name the only (else the first) one of the code;
    with `span` (FIRST,LAST) only those animations (`t2m.split`).

    Raises JailUnavailable when the jail cannot be built (never renders unjailed). If the awaiting
    task is cancelled, the whole jail is killed before re-raising.
    """
    try:
        static_check(code)
    except CodeRejected as e:
        return RenderResult(ok=False, video=None, error=str(e))
    return await render_in_jail(code, quality, workdir, **options)


async def render_in_jail(
    code: str,
    quality: str,
    workdir: Path,
    *,
    timeout_s: float,
    cpu_s: int,
    on_tick: Callable[[], Awaitable[None] | None] | None = None,
    min_seconds: float = 0.0,
    scene_class: str = "",
    span: str = "",
) -> RenderResult:
    """Render `code` in the jail without the static check (the jail is the boundary; tests run
    hostile programs through here). `workdir/job` becomes the jail's work dir; the log is
    `workdir/render.log`, outside it."""
    job = workdir / "job"
    job.mkdir(parents=True, exist_ok=True)
    (job / "scene.py").write_text(code)
    limits = jail.Limits(memory_mb=MEMORY_MB.get(quality, 2048), cpu_s=cpu_s, wall_s=timeout_s)
    media = f"{jail.JAIL_WORKDIR}/media"
    args = ["-I", "-B", "-m", "t2m.render_runner", f"{jail.JAIL_WORKDIR}/scene.py", quality, media]
    args += [f"{min_seconds:.3f}", scene_class] + ([span] if span else [])
    run = await jail.run_python(
        args, job, workdir / "render.log", env=jail_env(), limits=limits, on_tick=on_tick
    )
    if run.violation is not None:
        why = f"Render {run.violation}, {_progress(job)}"
        if run.violation.startswith("timed out"):
            why = f"Render timed out {_progress(job)} (the limit is {timeout_s:.0f} s)"
        if run.violation.startswith(("timed out", "CPU time")):
            why += ": the scene takes too long to render; use fewer or simpler animations"
        return RenderResult(False, None, scrub(trim_error(f"{run.log}\n{why}")))
    if run.returncode == 0:
        result = _read_result(job)
        if result is not None and result.video is not None:
            # The video is the attacker's file too: accepted only if it is what a render makes.
            video, duration, bad = await media_jail.probe_render(
                result.video, quality, min_seconds, workdir / "checked", on_tick
            )
            if video is None:
                why = f"Error: the render's video was refused: {bad}"
                return RenderResult(False, None, scrub(trim_error(f"{run.log}\n{why}")))
            return RenderResult(True, video, None, result.layout, duration)
    return RenderResult(ok=False, video=None, error=scrub(trim_error(_failure(run, job))))


def _failure(run: jail.JailRun, job: Path) -> str:
    """The error of a failed render: its output (ending with the exception, the line the fixer's
    doc query and the job's failure message take), or a plain reason when it names none."""
    log = run.log.strip()
    if "Error" in log or "Traceback" in log:
        return log
    if run.returncode is not None and run.returncode < 0:
        try:
            name = signal.Signals(-run.returncode).name
        except ValueError:
            name = f"signal {-run.returncode}"
        reason = f"the render process was killed by {name}, {_progress(job)}"
    elif run.returncode == 0:
        reason = f"the render wrote no valid result, {_progress(job)}"
    else:
        reason = f"the render exited with status {run.returncode} without an error message, "
        reason += _progress(job)
    return "\n".join(p for p in (log, f"Error: {reason}") if p)


def _progress(job: Path) -> str:
    """How far the render got ("after N animations (S s of video)"), from the runner's
    progress.json, distrusted like result.json (a regular file inside the work dir, read as two
    numbers only)."""
    path = os.path.realpath(job / "media" / "progress.json")
    try:
        if not Path(path).is_relative_to(os.path.realpath(job)):
            raise ValueError(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read(4096))
        animations, seconds = int(data["animations"]), float(data["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return "before the first animation finished"
    return f"after {animations} animations ({seconds:.1f} s of video)"


def _read_result(job: Path) -> RenderResult | None:
    """The runner's result.json, distrusted: it was written by the attacker's process, so it and
    the video must be regular files inside the work dir (a symlink made in the jail resolves
    against the host's filesystem here). The jail is dead by now, so nothing changes under us."""
    root = os.path.realpath(job)
    path = os.path.realpath(job / "media" / "result.json")
    if not Path(path).is_relative_to(root):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            result = json.loads(f.read(MAX_RESULT_BYTES))
        inside = Path(result["video"]).relative_to(jail.JAIL_WORKDIR)
        layout = [str(x)[:500] for x in result["layout"]][:50]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    video = job / inside
    real = Path(os.path.realpath(video))
    if not real.is_relative_to(root) or video.is_symlink() or not real.is_file():
        return None
    return RenderResult(ok=True, video=real, error=None, layout=layout)
