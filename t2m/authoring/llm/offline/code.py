"""Manim code for a planned scene: each sentence shown in full while it is spoken.

A scene is a list of beats, one per narrated sentence (its `key_points` entry and its start and
end from "narration_timing"). A beat shows its sentence wrapped over lines (in parts when too long
for one screen), the formula it holds typeset with MathTex and a legend of the symbols the scene
names, and beside it the visual the sentence calls for (`visuals.choose`). Run times and waits come
from the timings. When the sentences and the timing do not line up (a plan from another model, or
the summary), the points are revealed one after another over the narration as a list.
"""

from __future__ import annotations

from t2m.authoring.llm.offline import text as tx
from t2m.authoring.llm.offline import visuals

THEMES = {"dark": ("#000000", "#F2F2F2", "#58C4DD"), "light": ("#FAFAF7", "#1B1B1B", "#1F6FB2")}
PACE = {"slow": 1.4, "normal": 1.0, "fast": 0.7}
WIDTH = {"L": 30, "C": 50}
"""Characters per line of body text: beside a visual (left half) and alone (centred)."""
MAX_LINES = 5
SUBTITLE_BAND = 0.16
"""Share of the frame's height at the bottom that nothing is placed in: players draw subtitles
there (two lines), so on-screen text never hides under them."""

_HELPERS = '''
def fit(mob, width, height):
    """Scale a mobject down (never up) to fit `width` by `height`."""
    if mob.width > width:
        mob.scale_to_fit_width(width)
    if mob.height > height:
        mob.scale_to_fit_height(height)
    return mob


def place(mob, anchor, side):
    """Put `mob` below `anchor`, centred in the space left above the subtitles' band: on the
    left (L), right (R) or centre (C) of the frame."""
    top, bottom = anchor.get_bottom()[1] - 0.4, -config.frame_height / 2 + BAND
    fit(mob, {"L": 6.2, "R": W, "C": config.frame_width - 1.6}[side], top - bottom)
    x = {"L": -3.45, "R": 3.55, "C": 0.0}[side]
    return mob.move_to([x, (top + bottom) / 2, 0])


def words(text, side="C", size=30):
    return Text(text, font_size=size, color=FG, line_spacing=0.8)
'''


def _colors(style: dict[str, str]) -> str:
    bg, fg, accent = THEMES.get(style.get("theme", "dark"), THEMES["dark"])
    accent = style.get("accent_color") or accent
    return (
        f"BG, FG, ACCENT = {bg!r}, {fg!r}, {accent!r}\nW, H = 5.4, 4.2\n"
        f"BAND = {SUBTITLE_BAND} * config.frame_height  # kept free for subtitles\n"
    )


def _header(class_name: str, title: str, style: dict[str, str], plain: bool) -> str:
    title = "\n".join(tx.wrap(tx.on_screen(title), 36))
    return (
        "from manim import *\nimport numpy as np\n\n"
        + _colors(style)
        + _HELPERS
        + ("" if plain else visuals.functions())
        + f"\n\nclass {class_name}(Scene):\n"
        + "    def construct(self):\n"
        + "        self.camera.background_color = BG\n"
        + f"        title = fit(Text({title!r}, font_size=42, weight=BOLD, color=FG, line_spacing=0.8),"
        + " config.frame_width - 1.2, 1.6).to_edge(UP, buff=0.35)\n"
        + "        rule = Line(LEFT, RIGHT, color=ACCENT, stroke_width=4)"
        + ".set_width(min(title.width + 0.4, 12)).next_to(title, DOWN, buff=0.15)\n"
    )


class _Clock:
    """Emits waits so that each step starts when its sentence is spoken."""

    def __init__(self) -> None:
        self.t = 0.0
        self.lines: list[str] = []

    def play(self, anims: list[str], run_time: float) -> None:
        self.lines.append(f"        self.play({', '.join(anims)}, run_time={run_time:.2f})\n")
        self.t += run_time

    def until(self, t: float) -> None:
        if t - self.t >= 0.05:
            self.lines.append(f"        self.wait({t - self.t:.2f})\n")
            self.t = t


def _beat_times(count: int, timing: list[dict], duration: float) -> list[tuple[float, float]]:
    if timing and len(timing) == count:
        return [(float(c["start_s"]), float(c["end_s"])) for c in timing]
    span = float(timing[-1]["end_s"]) if timing else duration
    return [(span * i / count, span * (i + 1) / count) for i in range(count)]


def _formula_for(shown: list[str], scene_formula: str | None) -> list[str | None]:
    """Each beat's formulas (LaTeX): the ones its sentence holds, else those shown before."""
    out: list[str | None] = []
    current = tx.to_latex(scene_formula) if scene_formula and not shown else None
    for i, sentence in enumerate(shown):
        found = tx.find_formulas(sentence)
        if found:
            current = r", \qquad ".join(tx.to_latex(f) for f in found[:2])
        elif i == 0 and scene_formula and not any(tx.find_formulas(s) for s in shown):
            current = tx.to_latex(scene_formula)
        out.append(current)
    return out


def _legend_code(shown: list[str]) -> tuple[str, set[int]] | None:
    """The legend of the scene's formulas, and the beats whose sentence names a symbol."""
    raw = [f for s in shown for f in tx.find_formulas(s)]
    items = dict(item for f in raw for item in tx.legend(f, " ".join(shown)))
    if not items:
        return None
    naming = {i for i, s in enumerate(shown) if any(tx.legend(f, s) for f in raw)}
    rows = ", ".join(
        f"VGroup(MathTex({tx.to_latex(sym)!r}, color=ACCENT, font_size=44), "
        f"words({': ' + meaning!r}, size=32)).arrange(RIGHT, buff=0.15)"
        for sym, meaning in items.items()
    )
    return f"VGroup({rows}).arrange(DOWN, aligned_edge=LEFT, buff=0.25)", naming


def scene_code(
    scene: dict,
    class_name: str,
    *,
    last: bool = False,
    timing: list[dict] | None = None,
    style: dict[str, str] | None = None,
    plain: bool = False,
) -> str:
    """Manim code for a planned scene, paced to `timing` ("narration_timing"), in `style`.
    `plain` leaves out formulas and visuals (the fallback when code failed)."""
    style, timing = style or {}, timing or []
    pace = PACE.get(tx.pace(style), 1.0)
    shown = [tx.on_screen(p) for p in scene.get("key_points") or [] if p.strip()]
    duration = float(scene.get("duration_s") or 8)
    code = _header(class_name, scene.get("title") or "", style, plain)
    clock = _Clock()
    title_in = ["FadeIn(title, shift=DOWN * 0.2)", "Create(rule)"]
    if last or plain or (timing and len(timing) != len(shown)) or not shown:
        return code + _as_list(shown, scene, timing, duration, pace, clock, title_in, last, plain)
    times = _beat_times(len(shown), timing, duration)
    formulas = _formula_for(shown, scene.get("formula"))
    legend = _legend_code(shown)
    everything = " ".join(shown)
    on_screen: list[str] = []
    formula, anchor, right, right_kind = None, "rule", "", None
    for i, (sentence, (start, end)) in enumerate(zip(shown, times, strict=True)):
        clock.until(start)
        anims = list(title_in) if i == 0 else []
        out = [m for m in on_screen if m.startswith("t")]
        if formulas[i] != formula:
            out += [m for m in on_screen if m.startswith(("eq", "box"))]
            formula = formulas[i]
            anchor = f"box{i}" if formula else "rule"
            if formula:
                clock.lines.append(
                    f"        eq{i} = fit(MathTex({formula!r}, color=FG, font_size=60), 11, 1.3)"
                    ".next_to(rule, DOWN, buff=0.35)\n"
                    f"        box{i} = SurroundingRectangle(eq{i}, color=ACCENT, buff=0.15)\n"
                )
                anims += [f"Write(eq{i})", f"Create(box{i})"]
                on_screen += [f"eq{i}", f"box{i}"]
            out += [right] if right in on_screen else []  # it sat below the old formula
            right_kind, right = None, ""  # the visual sits below the formula: place it anew
        kind = visuals.choose(sentence, everything)
        if legend and formula and (i in legend[1] or (right_kind == "legend" and not kind)):
            kind = "legend"
        if kind != right_kind or (right and right not in on_screen and kind):
            out += [right] if right in on_screen else []
            right_kind, right = kind, f"vis{i}" if kind else ""
            if kind:
                build = legend[0] if legend else ""
                build = build if kind == "legend" else visuals.call(kind, sentence, everything)
                clock.lines.append(f"        {right} = place({build}, {anchor}, 'R')\n")
                anims.append(f"FadeIn({right})" if kind == "legend" else f"Create({right})")
                on_screen.append(right)
        side = "L" if right_kind else "C"
        written = tx.without_formulas(sentence, tx.find_formulas(sentence)[:2])  # typeset above
        parts = tx.screens(written, WIDTH[side], MAX_LINES)
        share = (end - start) / len(parts)
        for j, part in enumerate(parts):
            name = f"t{i}_{j}"
            clock.lines.append(f"        {name} = place(words({part!r}), {anchor}, {side!r})\n")
            step = anims + [f"FadeIn({name}, shift=UP * 0.15)"] + [f"FadeOut({m})" for m in out]
            clock.play(step, max(0.3, min(1.0, 0.3 * share)) * pace)
            on_screen = [m for m in on_screen if m not in out] + [name]
            anims, out = [], [name]
            clock.until(start + share * (j + 1) - (0.3 if j + 1 < len(parts) else 0))
    clock.until(times[-1][1] if timing else max(duration, times[-1][1]))
    return code + "".join(clock.lines)


def _as_list(
    shown: list[str],
    scene: dict,
    timing: list[dict],
    duration: float,
    pace: float,
    clock: _Clock,
    title_in: list[str],
    last: bool,
    plain: bool,
) -> str:
    """The points revealed one after another over the narration, as a checklist or a list."""
    kind = None if plain or last else visuals.choose(" ".join([scene.get("title", ""), *shown]))
    formula = None if plain else scene.get("formula")
    anchor = "rule"
    code = ""
    anims = list(title_in)
    if formula:
        code += (
            f"        eq = fit(MathTex({tx.to_latex(formula)!r}, color=FG, font_size=60), 11, 1.3)"
            ".next_to(rule, DOWN, buff=0.35)\n"
        )
        anims.append("Write(eq)")
        anchor = "eq"
    side = "L" if kind else "C"
    if kind:
        build = visuals.call(kind, " ".join(shown), " ".join(shown))
        code += f"        right = place({build}, {anchor}, 'R')\n"
        anims.append("Create(right)")
    mark = "Text('✓', font_size=30, color=ACCENT)" if last else "Dot(color=ACCENT)"
    typeset = tx.to_latex(formula) if formula else None
    shown = [
        tx.without_formulas(p, [f for f in tx.find_formulas(p) if tx.to_latex(f) == typeset])
        for p in shown
    ]
    rows = [f"'\\n'.join({tx.wrap(p, WIDTH[side] - 3)!r})" for p in shown]
    if rows:
        code += (
            "        rows = VGroup(*[VGroup("
            + mark
            + ", words(p, size=28)).arrange(RIGHT, buff=0.25,"
            " aligned_edge=UP) for p in [" + ", ".join(rows) + "]])"
            ".arrange(DOWN, aligned_edge=LEFT, buff=0.35)\n"
            f"        place(rows, {anchor}, {side!r})\n"
        )
    span = float(timing[-1]["end_s"]) if timing else duration
    clock.play(anims, 1.0 * pace)
    for j in range(len(rows)):
        clock.until(span * j / max(1, len(rows)))
        clock.play([f"FadeIn(rows[{j}], shift=RIGHT * 0.2)"], 0.6 * pace)
    clock.until(span)
    return code + "".join(clock.lines)


def fallback_code(scene: dict, class_name: str, style: dict[str, str] | None = None) -> str:
    """The most conservative rendering of a scene: its title and sentences as plain text."""
    points = scene.get("key_points") or [scene.get("goal") or scene.get("title") or ""]
    return scene_code({**scene, "key_points": points}, class_name, style=style, plain=True)
