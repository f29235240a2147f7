"""Manim API changes a model trained on older Manim code keeps hitting, for the fix prompt.

Models write Manim from years of examples: manimlib/3b1b names (`ShowCreation`, `TextMobject`),
early Community names (`FadeInFrom`, `get_graph`) and arguments since renamed
(`Sector(outer_radius=…)`, `Axes(x_min=…)`). When a render's error names one, the fix prompt gets
the replacement (`hints`). The table is a small curated list, each entry checked against the
installed Manim (`table` keeps only entries that hold: the old name is gone, the replacement is
there), plus whatever the installed Manim itself marks deprecated with
`manim.utils.deprecation.deprecated` (its docstrings carry ".. attention:: Deprecated").
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

MAX_HINTS = 8


@dataclass(frozen=True)
class Change:
    old: str
    """What the old code says, as a model writes it (`ShowCreation`, `Sector(outer_radius=…)`)."""
    hint: str
    """What to write instead, in a sentence."""
    patterns: tuple[str, ...]
    """Regexes that all find the old use in an error (its message or its traceback's lines)."""


# (old name, replacement, names the replacement needs) — names removed from `manim`.
REMOVED_NAMES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ShowCreation", "Create(mobject)", ("Create",)),
    ("TextMobject", "Text(...) for plain text, Tex(...) for LaTeX text", ("Text", "Tex")),
    ("TexMobject", "MathTex(...)", ("MathTex",)),
    ("TexText", "Tex(...)", ("Tex",)),
    ("OldTex", "MathTex(...)", ("MathTex",)),
    ("OldTexText", "Tex(...)", ("Tex",)),
    ("FadeInFrom", "FadeIn(mobject, shift=DIRECTION)", ("FadeIn",)),
    ("FadeInFromDown", "FadeIn(mobject, shift=UP)", ("FadeIn",)),
    ("FadeInFromLarge", "FadeIn(mobject, scale=FACTOR)", ("FadeIn",)),
    ("FadeOutAndShift", "FadeOut(mobject, shift=DIRECTION)", ("FadeOut",)),
    (
        "ShowCreationThenDestruction",
        "ShowPassingFlash(mobject, time_width=...)",
        ("ShowPassingFlash",),
    ),  # fmt: skip
    ("ShowCreationThenFadeOut", "Succession(Create(m), FadeOut(m))", ("Succession",)),
    ("ShowCreationThenFadeAround", "Circumscribe(mobject)", ("Circumscribe",)),
    ("ShowPassingFlashAround", "Circumscribe(mobject, fade_out=True)", ("Circumscribe",)),
    ("AnimationOnSurroundingRectangle", "Circumscribe(mobject)", ("Circumscribe",)),
    ("CircleIndicate", "Circumscribe(mobject, Circle)", ("Circumscribe",)),
    ("WiggleOutThenIn", "Wiggle(mobject)", ("Wiggle",)),
    ("UnWrite", "Unwrite(mobject)", ("Unwrite",)),
    ("ParametricSurface", "Surface(func, u_range=[...], v_range=[...])", ("Surface",)),
    (
        "GraphScene",
        "a Scene with axes = Axes(x_range=..., y_range=...) and axes.plot(f)",
        ("Axes",),
    ),  # fmt: skip
    ("ContinualAnimation", "an updater: mobject.add_updater(lambda m, dt: ...)", ("Mobject",)),
    ("FRAME_WIDTH", "config.frame_width", ("config",)),
    ("FRAME_HEIGHT", "config.frame_height", ("config",)),
    ("FRAME_X_RADIUS", "config.frame_x_radius", ("config",)),
    ("FRAME_Y_RADIUS", "config.frame_y_radius", ("config",)),
    ("get_norm", "np.linalg.norm(vector)", ("np",)),
    ("SmallDot", "Dot(radius=0.04)", ("Dot",)),
    ("Color", "ManimColor(...) or a color constant such as BLUE", ("ManimColor",)),
)
# (class, old argument, replacement) — arguments the class no longer takes.
RENAMED_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    (
        "Sector",
        "outer_radius",
        "Sector(radius=...) (AnnularSector takes inner_radius/outer_radius)",
    ),  # fmt: skip
    ("Sector", "inner_radius", "AnnularSector(inner_radius=..., outer_radius=...)"),
    ("Axes", "x_min", "Axes(x_range=[min, max, step])"),
    ("Axes", "x_max", "Axes(x_range=[min, max, step])"),
    ("Axes", "y_min", "Axes(y_range=[min, max, step])"),
    ("Axes", "y_max", "Axes(y_range=[min, max, step])"),
    ("NumberLine", "x_min", "NumberLine(x_range=[min, max, step])"),
    ("NumberLine", "x_max", "NumberLine(x_range=[min, max, step])"),
    ("NumberPlane", "x_line_frequency", "NumberPlane(x_range=[min, max, step])"),
    ("NumberPlane", "y_line_frequency", "NumberPlane(y_range=[min, max, step])"),
    ("Text", "size", "Text(..., font_size=48) or .scale(factor)"),
    ("MathTex", "size", "MathTex(..., font_size=48) or .scale(factor)"),
    ("Code", "code", "Code(code_string=..., language=...)"),
    ("Code", "style", "Code(..., formatter_style=...)"),
    ("Code", "insert_line_no", "Code(..., add_line_numbers=...)"),
    ("DashedLine", "dashed_segment_length", "DashedLine(..., dash_length=...)"),
    ("BarChart", "max_value", "BarChart(values, y_range=[0, max, step])"),
    (
        "ThreeDScene.set_camera_orientation",
        "distance",
        "set_camera_orientation(..., focal_distance=...)",
    ),  # fmt: skip
)
# (class, old method, replacement) — methods the class no longer has.
REMOVED_METHODS: tuple[tuple[str, str, str], ...] = (
    ("Axes", "get_graph", "axes.plot(function, x_range=[...])"),
    ("Axes", "get_derivative_graph", "axes.plot_derivative_graph(graph)"),
    ("Axes", "get_vertical_line_to_graph", "axes.get_vertical_line(axes.i2gp(x, graph))"),
    ("Mobject", "scale_about_point", "mobject.scale(factor, about_point=point)"),
    ("MovingCameraScene", "camera_frame", "self.camera.frame"),
)


def _resolve(dotted: str) -> object | None:
    import manim

    obj: object = manim
    for part in dotted.split("."):
        if part in ("np",):
            return part
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return None
    return obj


def _parameters(target: object) -> set[str]:
    func: Any = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        return set(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return set()


def _curated() -> list[Change]:
    import manim

    changes: list[Change] = []
    for old, new, needs in REMOVED_NAMES:
        if not hasattr(manim, old) and all(_resolve(n) is not None for n in needs):
            hint = f"`{old}` was removed from Manim: use {new}"
            changes.append(Change(old, hint, (rf"\b{old}\b",)))
    for where, arg, new in RENAMED_ARGUMENTS:
        target = _resolve(where)
        cls = where.split(".")[-1]
        if target is not None and arg not in _parameters(target):
            old = f"{cls}({arg}=…)"
            patterns = (rf"\b{cls}\b", rf"['\"]{arg}['\"]|\b{arg}\s*=")
            changes.append(Change(old, f"`{old}` is no longer accepted: use {new}", patterns))
    for cls_name, method, new in REMOVED_METHODS:
        klass = _resolve(cls_name)
        if isinstance(klass, type) and method not in dir(klass):
            old = f"{cls_name}.{method}"
            changes.append(
                Change(old, f"`{old}` no longer exists in Manim: use {new}", (rf"\.{method}\b",))
            )
    return changes


def deprecated_in(namespace: Mapping[str, object]) -> list[Change]:
    """What `manim.utils.deprecation.deprecated` marked in `namespace` (names and the methods of
    its classes): its docstring note, which says since when and what to use instead."""
    changes: list[Change] = []
    for name, obj in namespace.items():
        members: Iterable[tuple[str, object]] = [(name, obj)]
        if isinstance(obj, type):
            members = [(name, obj)] + [(f"{name}.{k}", v) for k, v in vars(obj).items()]
        for label, member in members:
            note = _deprecation_note(member)
            if note:
                last = label.rsplit(".", 1)[-1]
                hint = f"`{label}` is deprecated: {note}"
                changes.append(Change(label, hint, (rf"\b{last}\b",)))
    return changes


def _deprecation_note(obj: object) -> str:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or ".. attention:: Deprecated" not in doc:
        return ""
    note = doc.split(".. attention:: Deprecated", 1)[1].strip()
    return re.sub(r"[`:]+(?:class|func|meth|attr)?[`:]*", "", " ".join(note.split()))[:300]


@cache
def table() -> tuple[Change, ...]:
    """The API changes that hold for the installed Manim."""
    import manim

    return tuple(_curated() + deprecated_in(vars(manim)))


def matching(error: str) -> list[Change]:
    """The changes whose old API the error names (in its message or traceback)."""
    return [c for c in table() if all(re.search(p, error) for p in c.patterns)]


def hints(error: str) -> list[str]:
    """The replacements for old API the error names."""
    return list(dict.fromkeys(c.hint for c in matching(error)))[:MAX_HINTS]
