"""The layout check: after each animation, is every element inside the frame's safe area, and does
any text overlap other text? Deterministic geometry on Manim's own bounding boxes, no vision model.

It runs inside the render sandbox (`render_runner` wraps the scene's `play`); its findings go to the
fixer like a render error and are listed in the job's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SAFE_MARGIN = 0.2
"""Scene units kept clear along each frame edge (the frame is 14.2 × 8 units)."""
OVERLAP_SHARE = 0.15
"""Text boxes overlapping by more than this share of the smaller one count as overlapping."""
MAX_FINDINGS = 8


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


def _box(m) -> Box | None:
    if len(m.get_all_points()) == 0:
        return None
    return Box(m.get_left()[0], m.get_right()[0], m.get_bottom()[1], m.get_top()[1])


def _visible(m) -> bool:
    try:
        return m.get_fill_opacity() > 0 or m.get_stroke_opacity() > 0
    except Exception:
        return True


def describe(m) -> str:
    for attr in ("original_text", "text", "tex_string"):
        value = getattr(m, attr, None)
        if isinstance(value, str) and value.strip():
            short = value.strip() if len(value.strip()) <= 30 else value.strip()[:29] + "…"
            return f"{type(m).__name__}({short!r})"
    return type(m).__name__


def _split(mobjects: Iterable, text_types: tuple[type, ...]) -> tuple[list, list]:
    """Text-like mobjects (not descending into them) and the visible shapes that are not text."""
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
    return texts, [s for s in shapes if _visible(s)]


def check(mobjects: Iterable, frame_width: float, frame_height: float) -> list[str]:
    """Findings about the current frame (empty when the layout is fine)."""
    text_types = _text_types()
    texts, shapes = _split(list(mobjects), text_types)
    safe = Box(
        -frame_width / 2 + SAFE_MARGIN,
        frame_width / 2 - SAFE_MARGIN,
        -frame_height / 2 + SAFE_MARGIN,
        frame_height / 2 - SAFE_MARGIN,
    )
    findings: list[str] = []
    for m in texts + shapes:
        box = _box(m)
        if box is None or (
            m in shapes
            and (box.right - box.left >= frame_width or box.top - box.bottom >= frame_height)
        ):
            continue  # empty, or a deliberate full-frame background / plane
        past = {
            "left": safe.left - box.left,
            "right": box.right - safe.right,
            "bottom": safe.bottom - box.bottom,
            "top": box.top - safe.top,
        }
        edges = [f"the {edge} edge by {d:.2f}" for edge, d in past.items() if d > 0.01]
        if edges:
            findings.append(f"{describe(m)} is outside the safe area: past {', '.join(edges)}")
    boxes = [(m, b) for m in texts if (b := _box(m)) is not None and b.area > 0]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            if ba.overlap(bb) > OVERLAP_SHARE * min(ba.area, bb.area):
                findings.append(f"{describe(a)} overlaps {describe(b)}")
    return findings[:MAX_FINDINGS]
