"""The built-in `offline/...` model: a deterministic litellm provider that needs no network.

It reads the same prompts a real model gets (the `TASK:` line and the JSON `INPUT:` block) and
answers in the same format: a scene plan built from the topic and context (title, key ideas,
formulas as math, summary), real Manim code from templates, and plain-text fallbacks as fixes.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from litellm import CustomLLM, ModelResponse

WORDS_PER_SECOND = 2.6
MAX_POINT_CHARS = 48

_MATH_TOKEN = r"(?:[a-z]{2,5}\([^()]*\)|\(?-?[A-Za-z0-9.]{1,4}(?:\^\{?[A-Za-z0-9]+\}?|[²³])?\)?|\\[a-z]+\{[^}]*\})"
_FORMULA = re.compile(
    rf"{_MATH_TOKEN}(?:\s*[-+*/·]\s*{_MATH_TOKEN})*\s*=\s*{_MATH_TOKEN}(?:\s*[-+*/·]\s*{_MATH_TOKEN})*"
)


class OfflineLLM(CustomLLM):
    """Answers `plan_video`, `write_scene_code` and `fix_scene_code` prompts deterministically."""

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._respond(kwargs["model"], kwargs["messages"])

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._respond(kwargs["model"], kwargs["messages"])

    def _respond(self, model: str, messages: list[dict]) -> ModelResponse:
        prompt = message_text(messages)
        task, data = parse_prompt(prompt)
        if task == "plan_video":
            text = "```json\n" + json.dumps(plan(data["topic"], data.get("context", ""))) + "\n```"
        elif task == "write_scene_code":
            last = data["scene"].get("index") == data.get("scene_count", 0) - 1
            text = "```python\n" + scene_code(data["scene"], data["class_name"], last=last) + "```"
        elif task == "storyboard_scene":
            text = "```json\n" + json.dumps(storyboard(data["scene"])) + "\n```"
        elif task == "fix_scene_code":
            text = "```python\n" + fallback_code(data["scene"], data["class_name"]) + "```"
        elif task == "critique_scene":
            text = data.get("approval", "OK")  # it cannot see images: it approves
        else:
            text = "The offline model only answers t2m's own prompts."
        return ModelResponse(
            model=model,
            choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            usage={"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4,
                   "total_tokens": (len(prompt) + len(text)) // 4},
        )  # fmt: skip


def message_text(messages: list[dict]) -> str:
    """The text of chat messages, whether their content is a string or a list of parts."""
    texts = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):
            texts += [p.get("text", "") for p in content if p.get("type") == "text"]
        else:
            texts.append(str(content))
    return "\n".join(texts)


def parse_prompt(prompt: str) -> tuple[str, dict]:
    """Return the task name and the INPUT JSON of a t2m prompt (the first of each)."""
    task = re.search(r"^TASK:\s*(\w+)", prompt, re.MULTILINE)
    block = re.search(r"INPUT:\s*```json\s*\n(.*?)```", prompt, re.DOTALL)
    if not task or not block:
        return "", {}
    return task.group(1), json.loads(block.group(1))


# --- planning ---------------------------------------------------------------------------------


def find_formulas(text: str) -> list[str]:
    """Formulas in `text`: `$...$` spans first, else equations such as `a^2 + b^2 = c^2`."""
    found = [m.strip() for m in re.findall(r"\$([^$]+)\$", text) if m.strip()]
    if not found:
        found = [
            m.group(0).strip()
            for m in _FORMULA.finditer(text)
            if re.search(r"[A-Za-z]", m.group(0))
        ]
    unique: list[str] = []
    for f in found:
        if f not in unique:
            unique.append(f)
    return unique[:2]


def to_latex(formula: str) -> str:
    """Plain-text math to LaTeX: `sqrt(x)` → `\\sqrt{x}`, `*` → `\\cdot`, `^(..)` → `^{..}`."""
    tex = formula.replace("·", "*").replace("²", "^2").replace("³", "^3")
    tex = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", tex)
    tex = re.sub(r"\^\(([^()]*)\)", r"^{\1}", tex)
    tex = tex.replace("*", r" \cdot ").replace("π", r"\pi ").replace("θ", r"\theta ")
    return " ".join(tex.split())


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [" ".join(p.split()) for p in parts if len(p.split()) >= 2]


def _point(sentence: str) -> str:
    """A short on-screen phrase for a sentence."""
    s = sentence.rstrip(".!?")
    s = re.sub(r"\$([^$]+)\$", r"\1", s)
    return textwrap.shorten(s, width=MAX_POINT_CHARS, placeholder="…")


def _spoken(sentence: str) -> str:
    return re.sub(r"\$([^$]+)\$", r"\1", sentence).replace("^2", " squared").replace("^3", " cubed")


def _duration(narration: str) -> float:
    return round(min(20.0, max(6.0, len(narration.split()) / WORDS_PER_SECOND + 2.5)), 1)


def _scene(title: str, goal: str, narration: str, points: list[str], formula: str | None) -> dict:
    return {
        "title": textwrap.shorten(title, width=40, placeholder="…"),
        "goal": goal,
        "narration": narration,
        "key_points": points,
        "formula": formula,
        "duration_s": _duration(narration),
    }


def plan(topic: str, context: str) -> dict:
    """A 3–5 scene plan: title, one or two key-idea scenes, a formula scene if any, a summary."""
    topic = " ".join(topic.split())
    formulas = find_formulas(context)
    sentences = [s for s in _sentences(context) if not (formulas and any(f in s for f in formulas))]
    formula_sentences = [
        s for s in _sentences(context) if formulas and any(f in s for f in formulas)
    ]
    if not sentences:
        sentences = [
            f"{topic} is an idea worth understanding step by step.",
            f"We start from what {topic} is about and the parts it is built from.",
            f"Then we see how those parts work together in {topic}.",
            f"Finally we look at why {topic} matters and where it shows up.",
        ]
    scenes = [
        _scene(
            topic,
            f"Introduce {topic}",
            f"Welcome! In this short video we explore {topic}. " + _spoken(sentences[0]),
            [_point(sentences[0])],
            None,
        )
    ]
    ideas = sentences[1:] or sentences[:1]
    groups = [ideas[i : i + 3] for i in range(0, min(len(ideas), 6), 3)]
    for n, group in enumerate(groups, 1):
        scenes.append(
            _scene(
                "Key ideas" if len(groups) == 1 else f"Key ideas, part {n}",
                f"Understand the main ideas behind {topic}",
                " ".join(_spoken(s) for s in group),
                [_point(s) for s in group],
                None,
            )
        )
    if formulas:
        spoken = " ".join(_spoken(s) for s in formula_sentences[:2]) or (
            f"Here is the formula at the heart of {topic}: {_spoken(formulas[0])}."
        )
        scenes.append(
            _scene(
                "The formula",
                f"See the formula of {topic}",
                spoken + " Let us look at each part of it.",
                [_point(f) for f in formulas],
                to_latex(formulas[0]),
            )
        )
    recap = [p for s in scenes[1:] for p in s["key_points"]][:3] or [_point(sentences[0])]
    scenes.append(
        _scene(
            "Summary",
            f"Recap {topic}",
            f"To sum up {topic}: "
            + " ".join(_spoken(p).rstrip("…") + "." for p in recap)
            + " Thanks for watching!",
            recap,
            None,
        )
    )
    return {"title": topic, "scenes": scenes[:5]}


def storyboard(scene: dict) -> dict:
    """What the templates will show, and the docs a coder would look up for it."""
    if scene.get("formula"):
        visuals = "Write the formula large in the centre, frame it, then circumscribe it."
        queries = ["render a LaTeX math formula", "rectangle around an object to highlight it"]
    elif scene.get("index", 0) == 0:
        visuals = "Write the title, underline it, fade in the subtitle, grow three simple shapes."
        queries = ["display text on screen", "grow an object from its center"]
    else:
        visuals = (
            "Show the title, then each key point with a dot, one at a time, then indicate each."
        )
        queries = ["arrange objects in a row or column", "briefly highlight an object"]
    layout = "Title at the top edge; content centred below it, scaled to fit the safe area."
    return {
        "visuals": visuals,
        "layout": layout,
        "narration": scene.get("narration"),
        "doc_queries": queries,
    }


# --- code ---------------------------------------------------------------------------------------

_FIT = '''
def fit(mob, width=config.frame_width - 1.2, height=config.frame_height - 1.2):
    """Scale a mobject down (never up) so it stays inside the frame's safe area."""
    if mob.width > width:
        mob.scale_to_fit_width(width)
    if mob.height > height:
        mob.scale_to_fit_height(height)
    return mob
'''


def _header(class_name: str, title: str) -> str:
    return (
        "from manim import *\n"
        + _FIT
        + f"\n\nclass {class_name}(Scene):\n"
        + "    def construct(self):\n"
        + f"        title = fit(Text({title!r}, font_size=44, weight=BOLD)).to_edge(UP)\n"
    )


def _bullets(points: list[str]) -> str:
    return (
        "        rows = VGroup(*[\n"
        "            VGroup(Dot(color=YELLOW), Text(p, font_size=30)).arrange(RIGHT, buff=0.3)\n"
        f"            for p in {points!r}\n"
        "        ]).arrange(DOWN, aligned_edge=LEFT, buff=0.5)\n"
        "        fit(rows).next_to(title, DOWN, buff=0.7)\n"
    )


def _wait(seconds: float) -> str:
    return f"        self.wait({max(0.5, round(seconds, 1))})\n"


def scene_code(scene: dict, class_name: str, *, last: bool = False) -> str:
    """Manim code for a planned scene, chosen by what the scene holds."""
    title, points, formula = scene["title"], scene.get("key_points") or [], scene.get("formula")
    duration = float(scene.get("duration_s") or 8)
    code = _header(class_name, title)
    if scene.get("index", 0) == 0:
        subtitle = points[0] if points else scene.get("goal", "")
        code += (
            "        title.move_to(UP * 0.8)\n"
            "        line = Line(LEFT * 4, RIGHT * 4, color=BLUE).next_to(title, DOWN, buff=0.3)\n"
            f"        sub = fit(Text({subtitle!r}, font_size=30, color=GRAY_A)).next_to(line, DOWN, buff=0.4)\n"
            "        shapes = VGroup(Circle(color=BLUE), Square(color=GREEN), Triangle(color=RED))\n"
            "        shapes.arrange(RIGHT, buff=0.8).scale(0.4).to_edge(DOWN, buff=0.8)\n"
            "        self.play(Write(title), run_time=1.5)\n"
            "        self.play(GrowFromCenter(line), FadeIn(sub, shift=UP * 0.3))\n"
            "        self.play(LaggedStart(*[GrowFromCenter(s) for s in shapes], lag_ratio=0.3))\n"
            "        self.play(*[Rotate(s, PI / 2) for s in shapes], run_time=1)\n"
            + _wait(duration - 5)
        )
    elif formula and formula.count("=") == 1:
        lhs, rhs = (side.strip() for side in formula.split("="))
        code += (
            f"        eq = fit(MathTex({lhs!r}, '=', {rhs!r}, font_size=72))\n"
            "        self.play(Write(title))\n"
            "        self.play(Write(eq), run_time=2)\n"
            "        box = SurroundingRectangle(eq, color=YELLOW, buff=0.3)\n"
            "        self.play(Create(box))\n"
            "        for part, label, color in ((eq[0], 'left side', BLUE), (eq[2], 'right side', GREEN)):\n"
            "            brace = Brace(part, DOWN, color=color)\n"
            "            text = Text(label, font_size=28, color=color).next_to(brace, DOWN)\n"
            "            self.play(part.animate.set_color(color), GrowFromCenter(brace), FadeIn(text))\n"
            "            self.wait(0.5)\n"
            "            self.play(FadeOut(brace), FadeOut(text))\n"
            "        self.play(Circumscribe(eq, color=YELLOW), run_time=1.5)\n"
            + _wait(duration - 9)
        )
    elif formula:
        code += (
            f"        eq = fit(MathTex({formula!r}, font_size=72))\n"
            "        box = SurroundingRectangle(eq, color=YELLOW, buff=0.3)\n"
            "        self.play(Write(title))\n"
            "        self.play(Write(eq), run_time=2)\n"
            "        self.play(Create(box))\n"
            "        self.play(Circumscribe(eq, color=BLUE), run_time=1.5)\n"
            "        self.play(eq.animate.scale(1.15), rate_func=there_and_back, run_time=1.5)\n"
            + _wait(duration - 7)
        )
    elif last:
        code += (
            "        marks = VGroup(*[\n"
            "            VGroup(Text('✓', font_size=34, color=GREEN), Text(p, font_size=30)).arrange(RIGHT, buff=0.3)\n"
            f"            for p in {points!r}\n"
            "        ]).arrange(DOWN, aligned_edge=LEFT, buff=0.5)\n"
            "        fit(marks).next_to(title, DOWN, buff=0.7)\n"
            "        self.play(FadeIn(title, shift=DOWN * 0.3))\n"
            "        for row in marks:\n"
            "            self.play(FadeIn(row, shift=RIGHT * 0.3), run_time=0.8)\n"
            f"        self.wait({max(0.5, round(duration - 2.5 - 0.8 * len(points), 1))})\n"
            "        self.play(FadeOut(marks), title.animate.move_to(ORIGIN).scale(1.2))\n"
        )
    else:
        code += _bullets(points) + (
            "        self.play(Write(title))\n"
            "        for row in rows:\n"
            "            self.play(GrowFromCenter(row[0]), FadeIn(row[1], shift=RIGHT * 0.3))\n"
            "        for row in rows:\n"
            "            self.play(Indicate(row[1], color=YELLOW), run_time=0.8)\n"
            + _wait(duration - 1 - 1.8 * len(points))
        )
    return code


def fallback_code(scene: dict, class_name: str) -> str:
    """The most conservative rendering of a scene: its title and points as plain text."""
    points = scene.get("key_points") or [scene.get("goal") or scene["title"]]
    duration = float(scene.get("duration_s") or 8)
    return (
        _header(class_name, scene["title"])
        + _bullets([p for p in points])
        + "        self.play(Write(title))\n"
        + "        self.play(LaggedStart(*[FadeIn(r) for r in rows], lag_ratio=0.4))\n"
        + _wait(duration - 2)
    )
