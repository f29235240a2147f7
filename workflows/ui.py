"""What the Temporal Web UI shows of a video: its summary and details at start, current details
that follow the job, and a one-line summary per activity ("render scene 2 'Key ideas', attempt 2").

Plain text building from t2m's models, no I/O: the client uses it at start, the workflow on every
status change (through `imports_passed_through`), and tests call it directly. User-supplied text is
escaped for markdown and cut short, so a topic can neither break the UI's layout nor grow past the
server's metadata limits.
"""

from __future__ import annotations

import html
import re

from t2m.budget import spent_against
from t2m.vocabulary.job import JobStatus
from t2m.vocabulary.plan import ScenePlan
from t2m.vocabulary.request import VideoRequest

SUMMARY_CHARS = 160
"""The UI shows one line; the server caps a summary's size (a few hundred bytes)."""
TITLE_CHARS = 60
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+|!~])")

SCENE_VERBS = {
    "storyboard_scene": "storyboard",
    "narrate_scene": "narrate",
    "write_scene_code": "write code for",
    "doc_queries_for_error": "write doc searches for the error of",
    "fix_scene_code": "fix",
    "render_scene": "render",
    "plan_render": "dry-run",
    "join_renders": "join the rendered ranges of",
    "critique_scene": "review",
}
JOB_SUMMARIES = {
    "plan_video": "plan the scenes",
    "retrieve_docs": "retrieve Manim docs",
    "find_reusable": "look for an identical finished video",
    "copy_artifacts": "copy a finished identical video",
    "compose_video": "compose the scenes into one video",
    "make_thumbnail": "take the thumbnail",
    "finalize_video": "check every artifact landed in storage",
}


def one_line(text: str, limit: int) -> str:
    """`text` on one line (whitespace runs become one space), cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def md(text: str) -> str:
    """`text` with HTML's and markdown's special characters escaped, so it shows as typed: the
    UI renders summaries and details as markdown with HTML (`<img>`, forms, links) let through,
    so `<`, `>` and `&` become entities (quotes are harmless outside a tag), and markdown's own
    marks are backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def safe_line(text: str, limit: int) -> str:
    """`text` on one line, escaped (`md`), and at most `limit` characters once escaped (cut
    before the escaping, so no entity or backslash is split)."""
    flat = " ".join(text.split())
    cut = len(flat)
    while True:
        line = flat if cut >= len(flat) else flat[: cut - 1].rstrip() + "…"
        escaped = md(line)
        if len(escaped) <= limit:
            return escaped
        cut = min(cut, len(flat)) - max(1, (len(escaped) - limit) // 6)


def static_summary(req: VideoRequest) -> str:
    """The workflow's one-line summary: the topic, escaped."""
    return safe_line(req.topic, SUMMARY_CHARS)


def static_details(req: VideoRequest) -> str:
    """Who asked for what: owner, quality, models and options, as markdown."""
    options = [
        f"voice {req.voice}" if req.voice else "silent",
        "subtitles" if req.subtitles else "no subtitles",
        "thumbnail" if req.thumbnail else "no thumbnail",
        f"up to {req.max_fix_attempts} renders per scene",
    ]
    if req.use_rag:
        options.append("Manim docs in prompts")
    if req.vision_model:
        options.append(f"visual check by {req.vision_model}")
    options.append("reuse an identical video" if req.reuse else "made anew")
    if req.regenerate is not None:
        again = req.regenerate
        options.append(
            f"version {again.previous.version + 1}: scene {again.index + 1} made again with the"
            f" feedback {one_line(again.feedback, 80)!r}"
        )
    elif req.resume is not None:
        options.append(f"retry reusing {len(req.resume.scenes)} finished scene(s)")
    options += [f"{k}: {v}" for k, v in sorted(req.style_preferences.items())]
    lines = [
        f"**Topic:** {md(one_line(req.topic, 500))}",
        f"**Owner:** {md(req.owner)}",
        f"**Quality:** {md(req.quality)}",
        f"**Model:** {md(req.model)}",
    ]
    if req.planner_model:
        lines.append(f"**Planner model:** {md(req.planner_model)}")
    if req.coder_model:
        lines.append(f"**Coder model:** {md(req.coder_model)}")
    if req.context.strip():
        lines.append(f"**Context:** {md(one_line(req.context, 300))}")
    lines.append(f"**Options:** {md(', '.join(one_line(o, 120) for o in options))}")
    return "\n\n".join(lines)


def current_details(status: JobStatus) -> str:
    """The job as it stands: status, stage, percentage, then its scenes, as markdown. A list,
    not a table: the UI draws tables without cell padding ("Mean Value Theoremdone")."""
    head = f"**{status.status}** · stage **{status.current_stage}** · {status.percentage:.0f}%"
    if status.max_cost_usd is not None:
        # No "$": the UI's markdown takes "$…$" for math and showed "\(0.00 of \)0.05".
        spent = spent_against(status.max_cost_usd, status.spent_usd).replace("$", "")
        head += f" · model calls: {spent} USD spent"
    lines = [head]
    if status.reused_from:
        lines.append(f"Reused the video of job {md(status.reused_from)}")
    if status.error:
        lines.append(f"**Error:** {md(one_line(status.error, 500))}")
    if status.scenes:
        lines.append("")
        for s in status.scenes:
            note = s.error or (
                f"{len(s.layout_issues)} layout finding(s)" if s.layout_issues else ""
            )
            title = md(one_line(s.title, TITLE_CHARS))
            note = md(one_line(note.strip().splitlines()[-1] if note.strip() else "", 120))
            renders = f"{s.attempts} render{'' if s.attempts == 1 else 's'}"
            line = f"- Scene {s.index + 1} · {title} · **{s.state}** · {renders}"
            lines.append(f"{line} · {note}" if note else line)
    return "\n".join(lines)


def scene_of(arg: object) -> int | None:
    """The scene an activity's argument is about, if it is about one."""
    index = getattr(getattr(arg, "render", arg), "scene_index", None)  # join_renders: .render
    if isinstance(index, int):
        return index
    scene = getattr(arg, "scene", None)
    return scene.index if isinstance(scene, ScenePlan) else None


def activity_summary(name: str, arg: object, status: JobStatus) -> str:
    """One line naming what an activity does, for which scene and at which render attempt."""
    index = scene_of(arg)
    if name in SCENE_VERBS and index is not None:
        known = index < len(status.scenes)
        title = status.scenes[index].title if known else ""
        text = f"{SCENE_VERBS[name]} scene {index + 1}"
        if title:
            text += f" '{safe_line(title, TITLE_CHARS)}'"
        attempt = getattr(arg, "attempt", None)
        if name == "fix_scene_code" and isinstance(attempt, int):
            text += f" after render attempt {attempt}"
        elif name in ("render_scene", "critique_scene") and known:
            span = getattr(arg, "span", None)
            if span:
                text += f" animations {span[0] + 1}-{span[1] + 1}"
            text += f", attempt {status.scenes[index].attempts}"
        return one_line(text, SUMMARY_CHARS)
    if name == "record_job":
        return f"record the job as {getattr(arg, 'status', 'changed')}"
    return JOB_SUMMARIES.get(name, name.replace("_", " "))
