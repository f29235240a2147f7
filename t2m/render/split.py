"""Split renders: one long scene rendered as K animation ranges on K render slots, then joined.

Manim writes a scene as one partial movie per animation and can skip to an animation range
(`-n FIRST,LAST`: the earlier animations are played without writing frames), so consecutive ranges
joined by packet copy are the whole render's own packets. The render runner makes each range
exactly its part of the whole (`t2m.render.runner`, SPAN): the padding wait is computed from frame
counts, not from the clock that skipping does not advance, and only the written animations are
layout-checked. What can differ is a scene whose mobjects have updaters: a skipped animation
steps them once over its whole run time instead of once per frame. The dry pass reports them and
such a scene is never split.

The dry pass (SPAN `plan`) runs the scene in the render jail with every animation skipped: the
frame count of each animation, cheap next to a render at high quality. The estimate of a scene's
render time is its frames times a per-frame cost of its quality (`FRAME_COST_S`, measured on this
project's 2-core machines); K is at most the free render slots, the animations, and the estimate
over `Settings.split_min_range_s` (8 s; each range pays a jail, `import manim` and a dry pass of what precedes it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from t2m.jail.output import read_output
from t2m.media import probe as media_probe
from t2m.render.sandbox import run_runner, scrub, trim_error
from t2m.render.static_check import CodeRejected, static_check

Tick = Callable[[], Awaitable[None] | None] | None

FRAME_COST_S = {"low": 0.004, "medium": 0.007, "high": 0.015, "ultra": 0.06}
"""Render CPU seconds per frame, by quality (whole 2-core measurements, start-up included)."""
MAX_PLAN_BYTES = 1024**2
MAX_ANIMATIONS = 10_000
MAX_RANGES = 8
"""Of one scene, whatever the fleet: each range pays a jail, `import manim` and its share of the
join, and its outcome travels in the join's request."""
MAX_FRAMES = 10**7
"""Of one animation (46 h at 60 fps): the plan is the jailed program's word, so its numbers are
bounded before any arithmetic (the caller also holds their sum to what a render may last)."""


@dataclass(frozen=True)
class Plan:
    """What the dry pass found: each animation's frames, and whether any mobject had updaters."""

    frames: list[int]
    updaters: bool


def estimate_s(quality: str, frames: Sequence[int]) -> float:
    """The estimated render time of a whole scene (one slot)."""
    return FRAME_COST_S.get(quality, FRAME_COST_S["ultra"]) * sum(frames)


def worth_a_dry_pass(quality: str, seconds: float, min_range_s: float) -> bool:
    """Whether a scene expected to last `seconds` (its narration) may be long enough to split:
    its estimate at that length reaches one range. Most scenes last about their narration, so
    the dry pass is spent only where a split is likely (one that outlasts its narration twice
    over is rendered whole)."""
    fps = media_probe.QUALITIES.get(quality, media_probe.QUALITIES["ultra"])[2]
    return estimate_s(quality, [round(seconds * fps)]) >= min_range_s


def choose_ranges(
    plan: Plan, quality: str, slots: int, min_range_s: float
) -> list[tuple[int, int]]:
    """The animation ranges (first, last; inclusive, from 0) to render a scene in: one range
    (the whole scene) unless its estimate is worth more than one range of `min_range_s` and
    there are free slots, never more ranges than animations or `MAX_RANGES`; ranges balanced by
    frame count."""
    frames = plan.frames
    worth = estimate_s(quality, frames) / min_range_s if min_range_s > 0 else len(frames)
    k = min(len(frames), slots, int(worth), MAX_RANGES)
    if plan.updaters or k <= 1:
        return [(0, len(frames) - 1)]
    prefix = [0]
    for f in frames:
        prefix.append(prefix[-1] + f)
    bounds = [0]
    for j in range(1, k):  # each cut nearest its share of the frames, leaving one per range after
        target = prefix[-1] * j / k
        cuts = range(bounds[-1] + 1, len(frames) - (k - j) + 1)
        bounds.append(min(cuts, key=lambda b: abs(prefix[b] - target)))
    bounds.append(len(frames))
    return [(bounds[i], bounds[i + 1] - 1) for i in range(k)]


def merge_findings(parts: Sequence[Sequence[str]], limit: int) -> list[str]:
    """The layout findings of the ranges in order, each finding kept at its first report (as a
    whole render reports it), at most `limit`."""
    merged: list[str] = []
    seen: set[str] = set()
    for finding in (f for part in parts for f in part):
        what = finding.split(": ", 1)[-1]
        if what not in seen and len(merged) < limit:
            seen.add(what)
            merged.append(finding)
    return merged


async def plan(
    code: str,
    quality: str,
    workdir: Path,
    *,
    timeout_s: float,
    cpu_s: int,
    min_seconds: float,
    scene_class: str = "",
    on_tick: Tick = None,
) -> Plan | str:
    """The dry pass of `code` in the render jail: its Plan, or the error (the fix loop gets it
    from the whole render; the caller renders whole)."""
    try:
        static_check(code)
    except CodeRejected as e:
        return str(e)
    job = workdir / "job"
    run = await run_runner(
        code,
        quality,
        workdir,
        ["plan"],
        workdir / "plan.log",
        timeout_s=timeout_s,
        cpu_s=cpu_s,
        min_seconds=min_seconds,
        scene_class=scene_class,
        on_tick=on_tick,
    )
    found = _read_plan(job) if run.violation is None and run.returncode == 0 else None
    if found is None:
        return scrub(trim_error(f"{run.log}\n{run.violation or 'the dry pass wrote no plan'}"))
    return found


def _read_plan(job: Path) -> Plan | None:
    """plan.json, distrusted like the render's result.json: a regular file inside the work dir,
    read bounded, only numbers and a flag taken."""
    try:
        data = json.loads(read_output(job, "media/plan.json", MAX_PLAN_BYTES))
        frames = [int(x) for x in data["frames"]]
        updaters = data["updaters"] is True
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    if not 0 < len(frames) <= MAX_ANIMATIONS or any(not 0 <= f <= MAX_FRAMES for f in frames):
        return None
    return Plan(frames, updaters)
