"""The layout check: after each animation, is every element inside the frame's safe area, and does
any text overlap other text? Deterministic geometry on Manim's own bounding boxes, no vision model.

It runs inside the render sandbox (`render_runner` wraps the scene's `play`); its findings go to the
fixer like a render error and are listed in the job's status. Only what is drawn counts: no points,
zero fill and stroke, or a plain `Mobject` such as a `ValueTracker` (whose "point" is its value) is
ignored. A 3D scene passes its camera's projection (`project`), so boxes are where points are drawn.
Shapes at least the frame's size are backgrounds or planes and are skipped; shapes nearly that size
(`BACKGROUND_SHARE`) are frames and borders, judged against the frame itself, not the safe area.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

SAFE_MARGIN = 0.2
"""Scene units kept clear along each frame edge (the frame is 14.2 × 8 units)."""
OVERLAP_SHARE = 0.15
"""Text boxes overlapping by more than this share of the smaller one count as overlapping."""
MAX_FINDINGS = 8
BACKGROUND_SHARE = 0.9
"""A shape this share of the frame's width or height is a frame-filling background or border."""
TOLERANCE = 0.01

Project = Callable[[Any, np.ndarray], np.ndarray]
"""(mobject, its points) → the points as drawn (a 3D camera's `transform_points_pre_display`)."""


@dataclass(frozen=True)
class Box:
    left: float
    right: float
    bottom: float
    top: float

    @property
    def area(self) -> float:
        return max(0.0, self.right - self.left) * max(0.0, self.top - self.bottom)

    def overlap(self, other: Box) -> float:
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.top, other.top) - max(self.bottom, other.bottom)
        return max(0.0, w) * max(0.0, h)


def _text_types() -> tuple[type, ...]:
    from manim import Code, DecimalNumber, MarkupText, Paragraph, SingleStringMathTex, Text

    return (Text, MarkupText, Paragraph, SingleStringMathTex, DecimalNumber, Code)


def _drawn(m) -> bool:
    """Whether mobject `m` itself puts anything on screen (its points, not its submobjects')."""
    from manim import ImageMobject, PMobject, VMobject

    if len(m.points) == 0:
        return False
    if isinstance(m, VMobject):
        try:
            stroke = m.get_stroke_opacity() > 0 and m.get_stroke_width() > 0
            return bool(m.get_fill_opacity() > 0 or stroke)
        except Exception:
            return True
    return isinstance(m, (ImageMobject, PMobject))  # a plain Mobject (ValueTracker) is not drawn


def _box(m, project: Project | None = None) -> Box | None:
    """The bounding box of what `m` and its family draw, as drawn; None when nothing is."""
    chunks = [
        np.asarray(project(sub, sub.points) if project else sub.points)
        for sub in m.get_family()
        if _drawn(sub)
    ]
    if not chunks:
        return None
    points = np.concatenate(chunks)
    (left, bottom), (right, top) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return Box(float(left), float(right), float(bottom), float(top))


def describe(m) -> str:
    for attr in ("original_text", "text", "tex_string"):
        value = getattr(m, attr, None)
        if isinstance(value, str) and value.strip():
            short = value.strip() if len(value.strip()) <= 30 else value.strip()[:29] + "…"
            return f"{type(m).__name__}({short!r})"
    return type(m).__name__


def _split(mobjects: Iterable, text_types: tuple[type, ...]) -> tuple[list, list]:
    """Text-like mobjects (not descending into them) and the leaf shapes that are not text."""
    texts, shapes = [], []

    def walk(m) -> None:
        if isinstance(m, text_types):
            texts.append(m)
            return
        if not m.submobjects:
            shapes.append(m)
        for sub in m.submobjects:
            walk(sub)

    for top in mobjects:
        walk(top)
    return texts, shapes


def _inset(frame_width: float, frame_height: float, margin: float) -> Box:
    return Box(
        -frame_width / 2 + margin,
        frame_width / 2 - margin,
        -frame_height / 2 + margin,
        frame_height / 2 - margin,
    )


def check(
    mobjects: Iterable,
    frame_width: float,
    frame_height: float,
    project: Project | None = None,
) -> list[str]:
    """Findings about the current frame (empty when the layout is fine). `project` maps a
    mobject's points to where they are drawn (3D scenes); without it they are drawn as they are."""
    texts, shapes = _split(list(mobjects), _text_types())
    safe, frame = (
        _inset(frame_width, frame_height, SAFE_MARGIN),
        _inset(frame_width, frame_height, 0),
    )
    findings: list[str] = []
    boxes: list[tuple[Any, Box]] = []
    for m in texts + shapes:
        box = _box(m, project)
        if box is None:
            continue  # nothing drawn
        width, height = box.right - box.left, box.top - box.bottom
        bounds, where = safe, "the safe area"
        if m in shapes and (width >= frame_width or height >= frame_height):
            continue  # a deliberate full-frame background or plane
        if m in shapes and (
            width >= BACKGROUND_SHARE * frame_width or height >= BACKGROUND_SHARE * frame_height
        ):
            bounds, where = frame, "the frame"  # a frame-filling background or border
        if m in texts and box.area > 0:
            boxes.append((m, box))
        past = {
            "left": bounds.left - box.left,
            "right": box.right - bounds.right,
            "bottom": bounds.bottom - box.bottom,
            "top": box.top - bounds.top,
        }
        edges = [f"the {edge} edge by {d:.2f}" for edge, d in past.items() if d > TOLERANCE]
        if edges:
            findings.append(f"{describe(m)} is outside {where}: past {', '.join(edges)}")
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            if ba.overlap(bb) > OVERLAP_SHARE * min(ba.area, bb.area):
                findings.append(f"{describe(a)} overlaps {describe(b)}")
    return findings[:MAX_FINDINGS]
