"""Generated Manim code is untrusted: a static allow-list check, then a sandboxed render.

The render runs `t2m.render_runner` in a child process with no network (`unshare -n`), resource
limits (address space, CPU seconds, file size, core dumps), a wall-clock timeout, a private working
directory as HOME/TMPDIR, and an environment rebuilt from scratch so no secret can leak into it.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED_MODULES = frozenset(
    {"manim", "math", "numpy", "random", "itertools", "functools", "typing", "__future__", "colour"}
)
FORBIDDEN_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr",
        "setattr", "delattr", "input", "breakpoint", "exit", "quit", "help", "memoryview",
        "__builtins__", "os", "sys", "subprocess", "socket", "shutil", "importlib", "builtins",
    }
)  # fmt: skip
ALLOWED_DUNDERS = frozenset({"__init__"})

# Address-space limits per quality: FACTS measured -ql ≥ 832 MB and -qh ≥ 1280 MB; leave headroom.
MEMORY_MB = {"low": 1536, "medium": 2048, "high": 3072, "ultra": 6144}
MAX_FILE_BYTES = 2 * 1024**3


class CodeRejected(ValueError):
    """The code failed the static check; the message names the line and the rule."""


def static_check(code: str) -> None:
    """Raise CodeRejected unless `code` only imports allow-listed modules and avoids escapes."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise CodeRejected(f"SyntaxError: line {e.lineno}: {e.msg}") from None
    problems: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_MODULES:
                    problems.append(f"line {line}: import of {alias.name!r} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if node.level or mod not in ALLOWED_MODULES:
                problems.append(f"line {line}: import from {node.module!r} is not allowed")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(f"line {line}: use of {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and _is_dunder(node.attr):
            problems.append(f"line {line}: dunder attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Name) and _is_dunder(node.id):
            problems.append(f"line {line}: dunder name {node.id!r} is not allowed")
    if not any(isinstance(n, ast.ClassDef) and n.bases for n in tree.body):
        problems.append("no Scene subclass is defined at the top level")
    if problems:
        raise CodeRejected("Code rejected by the static check:\n" + "\n".join(problems))


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS


@dataclass
class RenderResult:
    ok: bool
    video: Path | None
    error: str | None
    layout: list[str] = field(default_factory=list)


def _isolation_prefix() -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    if not os.path.exists(unshare):
        raise RuntimeError("`unshare` (util-linux) is required to render without network")
    return [unshare, "-n"] if os.geteuid() == 0 else [unshare, "--net", "--map-root-user"]


def _clean_env(workdir: Path) -> dict[str, str]:
    """A fresh environment: nothing from the worker's (API keys, AWS, database URLs) survives."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }


PR_SET_PDEATHSIG = 1


def _limits(memory_mb: int, cpu_s: int) -> Callable[[], None]:
    """Runs in the child before exec: resource limits, and death with the parent.

    The render has its own process group (so cancelling can kill all of it); the parent-death
    signal makes sure a SIGKILLed worker does not leave it running either.
    """
    parent = os.getpid()

    def apply() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        mem = memory_mb * 1024**2
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def trim_error(text: str, max_chars: int = 3000) -> str:
    """Keep the end of a traceback, where the cause is, within a size fit for a prompt."""
    text = text.strip()
    return text if len(text) <= max_chars else "…\n" + text[-max_chars:]


async def render(
    code: str,
    quality: str,
    workdir: Path,
    *,
    timeout_s: float,
    cpu_s: int,
    on_tick: Callable[[], Awaitable[None] | None] | None = None,
) -> RenderResult:
    """Check and render `code` in the sandbox; a code error is a result, not an exception.

    If the awaiting task is cancelled, the whole process group is killed before re-raising, so no
    render outlives a cancelled job.
    """
    try:
        static_check(code)
    except CodeRejected as e:
        return RenderResult(ok=False, video=None, error=str(e))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    script = workdir / "scene.py"
    script.write_text(code)
    cmd = [*_isolation_prefix(), sys.executable, "-m", "t2m.render_runner"]
    cmd += [str(script), quality, str(workdir / "media")]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=workdir,
        env=_clean_env(workdir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_limits(MEMORY_MB.get(quality, 2048), cpu_s),
    )
    output = asyncio.ensure_future(proc.stdout.read())  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=2.0)
                break
            except TimeoutError:
                if on_tick is not None:
                    r = on_tick()
                    if r is not None:
                        await r
                if loop.time() > deadline:
                    _kill(proc.pid)
                    await proc.wait()
                    return RenderResult(False, None, f"Render timed out after {timeout_s:.0f} s")
    except BaseException:
        _kill(proc.pid)
        await proc.wait()
        raise
    log = (await output).decode(errors="replace")
    result_file = workdir / "media" / "result.json"
    if proc.returncode == 0 and result_file.exists():
        result = json.loads(result_file.read_text())
        video = Path(result["video"])
        if video.is_file():
            return RenderResult(ok=True, video=video, error=None, layout=result["layout"])
    if proc.returncode and proc.returncode < 0:
        log += f"\nRender process killed by signal {signal.Signals(-proc.returncode).name}"
    return RenderResult(ok=False, video=None, error=trim_error(log or "render failed"))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
