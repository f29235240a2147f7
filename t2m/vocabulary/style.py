"""`style_preferences`: the known keys, their allowed values and their normal form."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

STYLE_CHOICES: dict[str, tuple[str, ...]] = {
    "theme": ("dark", "light"),
    "pace": ("slow", "normal", "fast"),
    "audience": ("beginner", "general", "intermediate", "advanced", "expert"),
}
"""Known `style_preferences` keys with a closed set of values; `accent_color` and `language` are
checked by shape; any other key passes to the prompts as free text."""
STYLE_KEYS = (*STYLE_CHOICES, "accent_color", "language")
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
NAMED_COLORS = {
    "blue": "#58C4DD",
    "teal": "#5CD0B3",
    "green": "#83C167",
    "yellow": "#FFFF00",
    "gold": "#F0AC5F",
    "red": "#FC6255",
    "maroon": "#C55F73",
    "purple": "#9A72AC",
    "pink": "#D147BD",
    "orange": "#FF862F",
    "white": "#FFFFFF",
    "black": "#000000",
    "gray": "#888888",
    "grey": "#888888",
}
"""Manim's colour names an `accent_color` may use (its hex values), besides `#RRGGBB`/`#RGB`."""


def style_vocabulary(prefs: dict[str, str]) -> dict[str, str]:
    """Known style keys normalized (lower case; `Accent-Color` → `accent_color`) and their values
    checked: a ValidationError lists every bad value at once, each under its own key."""
    out: dict[str, str] = {}
    bad: list[Any] = []  # pydantic_core's InitErrorDetails
    for key, value in prefs.items():
        known = key.strip().lower().replace("-", "_").replace(" ", "_")
        v = value.strip().lower()
        if known == "accent_color":
            v = NAMED_COLORS.get(v.replace("_", ""), v).upper()
        rule = None
        if known in STYLE_CHOICES and v not in STYLE_CHOICES[known]:
            rule = f"one of {'|'.join(STYLE_CHOICES[known])}"
        elif known == "accent_color" and not _HEX_COLOR.fullmatch(v):
            rule = f"#RRGGBB, #RGB or one of {', '.join(NAMED_COLORS)}"
        elif known == "language" and not re.fullmatch(r"[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,2}", v):
            rule = "a language code such as en, fr or pt-br"
        if rule:
            error = ValueError(f"{known} must be {rule}, not {value!r}")
            bad.append(
                {"type": "value_error", "loc": (key,), "input": value, "ctx": {"error": error}}
            )
        out[known if known in STYLE_KEYS else key] = v if known in STYLE_KEYS else value
    if bad:
        raise ValidationError.from_exception_data("style_preferences", bad)
    return out
