"""Generated Manim code is untrusted: a static check for fast feedback, then a render in the jail.

The model writes whatever the request asks for, so every render is treated as an attacker's
program. The boundary is the jail (`t2m.jail.bwrap`: bubblewrap, an unprivileged uid, no network, a
filesystem with nothing but the runtime and the render's own work dir, limits for the whole jail).
The static check only gives the fixer clear, early messages for code that could never be allowed;
it closes the cheap bypasses but is not relied upon. Error text going back to the fixer and the
user is scrubbed of anything secret-looking as a last belt.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2m.jail import bwrap as jail
from t2m.jail.limits import JailUnavailable
from t2m.jail.output import read_output
from t2m.jail.self_test import check_jail
from t2m.media import jailed as media_jail
from t2m.render.static_check import CodeRejected, static_check

__all__ = ["CodeRejected", "JailUnavailable", "RenderResult", "check_jail", "render", "scrub"]

# Per quality: the address space of each process and the RSS of the whole jail. FACTS measured
# -ql ≥ 832 MB and -qh ≥ 1280 MB under RLIMIT_AS; leave headroom.
MEMORY_MB = {"low": 1536, "medium": 2048, "high": 3072, "ultra": 6144}
MAX_RESULT_BYTES = 1024**2


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
    with `span` (FIRST,LAST) only those animations (`t2m.render.split`).

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
    run = await run_runner(
        code,
        quality,
        workdir,
        [span] if span else [],
        workdir / "render.log",
        timeout_s=timeout_s,
        cpu_s=cpu_s,
        min_seconds=min_seconds,
        scene_class=scene_class,
        on_tick=on_tick,
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


async def run_runner(
    code: str,
    quality: str,
    workdir: Path,
    extra: list[str],
    log: Path,
    *,
    timeout_s: float,
    cpu_s: int,
    min_seconds: float,
    scene_class: str,
    on_tick: Callable[[], Awaitable[None] | None] | None,
) -> jail.JailRun:
    """`t2m.render.runner` on `code` in the render jail, `workdir/job` its work dir (`extra`: a
    span to render, or `plan` for the dry pass)."""
    job = workdir / "job"
    job.mkdir(parents=True, exist_ok=True)
    (job / "scene.py").write_text(code)
    limits = jail.Limits(memory_mb=MEMORY_MB.get(quality, 2048), cpu_s=cpu_s, wall_s=timeout_s)
    media = f"{jail.JAIL_WORKDIR}/media"
    args = ["-I", "-B", "-m", "t2m.render.runner", f"{jail.JAIL_WORKDIR}/scene.py", quality, media]
    args += [f"{min_seconds:.3f}", scene_class, *extra]
    return await jail.run_python(args, job, log, env=jail_env(), limits=limits, on_tick=on_tick)


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
    try:
        data = json.loads(read_output(job, "media/progress.json", 4096))
        animations, seconds = int(data["animations"]), float(data["seconds"])
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return "before the first animation finished"
    return f"after {animations} animations ({seconds:.1f} s of video)"


def _read_result(job: Path) -> RenderResult | None:
    """The runner's result.json, distrusted: it was written by the attacker's process, so it and
    the video must be regular files inside the work dir (a symlink made in the jail resolves
    against the host's filesystem here). The jail is dead by now, so nothing changes under us."""
    root = os.path.realpath(job)
    try:
        result = json.loads(read_output(job, "media/result.json", MAX_RESULT_BYTES))
        inside = Path(result["video"]).relative_to(jail.JAIL_WORKDIR)
        layout = [str(x)[:500] for x in result["layout"]][:50]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    video = job / inside
    real = Path(os.path.realpath(video))
    if not real.is_relative_to(root) or video.is_symlink() or not real.is_file():
        return None
    return RenderResult(ok=True, video=real, error=None, layout=layout)
