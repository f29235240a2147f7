"""The offline default on eleven topics of our own (2–5 sentence contexts): nothing cut with "…",
no sentence narrated twice, every subtitle cue a whole sentence, every context sentence on screen,
every formula typeset (with a legend where the context names its symbols), visuals chosen from
the content, file-touching TeX stripped, and the code paced to the narration's timings. The plan,
storyboard and code come through `t2m.authoring.steps` and litellm exactly as in a job; a few scenes are
rendered for real in the jail."""

from __future__ import annotations

import ast
import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient
from t2m.authoring.llm.offline import text as tx
from t2m.media.speech import split_sentences
from t2m.render import sandbox, static_check
from t2m.vocabulary.plan import Cue, VideoPlan

MODEL = "offline/templates"


@dataclass
class Topic:
    topic: str
    sentences: list[str]
    formulas: dict[str, str] = field(default_factory=dict)
    """Formula as written in the context → the LaTeX it must be typeset as."""
    legend: list[str] = field(default_factory=list)
    """Meanings of symbols the legend must show."""
    visuals: list[str] = field(default_factory=list)

    @property
    def context(self) -> str:
        return " ".join(self.sentences)


TOPICS = [
    Topic("Pythagorean theorem", [
        "In a right triangle, a^2 + b^2 = c^2.",
        "The hypotenuse is the longest side, opposite the right angle.",
        "The theorem lets us find a missing side from the other two.",
    ], {"a^2 + b^2 = c^2": "a^2 + b^2 = c^2"}, [], ["triangle"]),
    Topic("Ideal gas law", [
        "The ideal gas law states PV = nRT, where P is the pressure, V is the volume and T is the"
        " temperature.",
        "It describes gases well at low density.",
        "Real gases deviate from it at high pressure.",
    ], {"PV = nRT": "PV = nRT"}, ["pressure", "volume", "temperature"]),
    Topic("Malus's law", [
        "Malus's law gives the intensity of polarized light after a polarizer: I = I0 cos^2(theta).",
        "Here I0 is the initial intensity and theta is the angle between the polarization and the"
        " axis.",
        "At ninety degrees no light passes at all.",
        "Sunglasses use this to cut glare from water.",
    ], {"I = I0 cos^2(theta)": r"I = I_0 \cos^2(\theta)"}, ["initial intensity"], ["wave"]),
    Topic("Mass-energy equivalence", [
        "Einstein showed that E = mc^2.",
        "A small mass holds an enormous energy because c is the speed of light.",
    ], {"E = mc^2": "E = mc^2"}, ["speed of light"]),
    Topic("Newton's second law", [
        "Newton's second law says F = ma.",
        "The force and the acceleration are vectors that point the same way.",
        "A larger mass needs a larger force for the same acceleration.",
    ], {"F = ma": "F = ma"}, [], ["vectors"]),
    Topic("Compound interest", [
        "Money that earns interest on its interest grows exponentially.",
        "With yearly compounding the balance is $A = P(1 + r)^t$ after t years.",
        "Starting early matters more than a high rate.",
    ], {"A = P(1 + r)^t": "A = P(1 + r)^t"}, [], ["exp"]),
    Topic("Binary search", [
        "Binary search finds a value in a sorted array.",
        "It compares the target with the middle element and keeps the half that can hold it.",
        "Each step halves the part of the array still to search.",
        "So a million elements need only about twenty comparisons.",
    ], {}, [], ["array"]),
    Topic("The derivative", [
        "The derivative of a function is the slope of its tangent line.",
        "For f(x) = x^2 the derivative is f'(x) = 2x.",
        "The slope grows as x grows.",
    ], {"f(x) = x^2": "f(x) = x^2", "f'(x) = 2x": "f'(x) = 2x"}, [], ["graph"]),
    Topic("Absolute value", [
        "The absolute value of a number is its distance from zero on the number line.",
        "Both -3 and 3 have absolute value 3.",
        "A distance is never negative, e.g. it cannot be -1.",
    ], {}, [], ["number_line"]),
    Topic("Survey results", [
        "In a survey 40 people chose tea, 25 chose coffee and 10 chose water.",
        "A bar chart shows these counts side by side.",
        "Tea was the clear favourite.",
    ], {}, [], ["bar_chart"]),
    Topic("Photosynthesis", [
        "Plants turn light, water and carbon dioxide into sugar and oxygen.",
        "Chlorophyll absorbs mostly red and blue light.",
    ]),
    Topic("Taylor series", [  # factorials: "3!" ends no sentence, cue or scene
        "Approximate sin(x) near zero with polynomials x - x^3/3! + x^5/5!.",
        "Each term adds accuracy farther from zero.",
        "Five factorial, written 5!, is 120.",
    ], {"x - x^3/3! + x^5/5!": r"x - \frac{x^3}{3!} + \frac{x^5}{5!}"}),
    Topic("Circles", [  # decimals and abbreviations
        "Pi is about 3.14, i.e. a little more than three.",
        "Fig. 2 shows a circle of radius 1.5 m, e.g. a dinner plate.",
        "Its area is about 7.07 square metres.",
    ], {}, [], ["circle"]),
    Topic("Golden ratio", [  # a dot inside $…$, a title's dot
        "The golden ratio is $\\phi = (1 + \\sqrt{5})/2$, about 1.618.",
        "Dr. Euclid, i.e. the Greek geometer, studied it.",
    ], {r"\phi = (1 + \sqrt{5})/2": r"\phi = (1 + \sqrt{5})/2"}),
    Topic("Pendulum", [  # Greek letter names, sqrt, subscripts in plain text
        "The period of a pendulum is T = 2 pi sqrt(L/g), where L is the length.",
        "A gentle swing starts from theta_0 = 0.1 radians.",
        "The period does not depend on the mass.",
    ], {"T = 2 pi sqrt(L/g)": r"T = 2 \pi \sqrt{L/g}", "theta_0 = 0.1": r"\theta_0 = 0.1"},
        ["length"]),
]  # fmt: skip


@dataclass
class Authored:
    plan: VideoPlan
    narrations: list[str]
    codes: list[str]


def cues_for(narration: str) -> list[Cue]:
    """The cues t2m.media.speech makes of a narration (one per sentence), with plausible times."""
    out, t = [], 0.0
    for sentence in split_sentences(narration):
        length = 0.4 + len(sentence.split()) / 2.6
        out.append(Cue(start=round(t, 2), end=round(t + length, 2), text=sentence))
        t += length + 0.4
    return out


async def author(topic: Topic, style: dict[str, str] | None = None) -> Authored:
    client = ModelClient(None)
    plan, _ = await authoring.plan_video(client, MODEL, topic.topic, topic.context, style)
    narrations, codes = [], []
    for scene in plan.scenes:
        count = len(plan.scenes)
        board, _ = await authoring.storyboard_scene(client, MODEL, topic.topic, scene, count, style)
        scene = scene.model_copy(update={"narration": board.narration or scene.narration})
        cues = cues_for(scene.narration)
        code, _ = await authoring.write_scene_code(
            client, MODEL, topic.topic, scene, count, board, None, cues, style
        )
        static_check.static_check(code)
        narrations.append(scene.narration)
        codes.append(code)
    return Authored(plan, narrations, codes)


def shown_strings(code: str) -> list[str]:
    """Every string the scene's construct() puts on screen (Text/words/MathTex arguments)."""
    construct = next(
        n
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.FunctionDef) and n.name == "construct"
    )
    return [
        n.value
        for n in ast.walk(construct)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def authored() -> dict[str, Authored]:
    async def all_topics() -> dict[str, Authored]:
        return {t.topic: await author(t) for t in TOPICS}

    return asyncio.run(all_topics())


def test_there_are_ten_topics_with_two_to_five_sentences() -> None:
    assert len(TOPICS) >= 10
    assert all(2 <= len(t.sentences) <= 5 for t in TOPICS)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.topic)
def test_nothing_is_cut_and_nothing_said_twice(topic: Topic, authored: dict[str, Authored]) -> None:
    a = authored[topic.topic]
    assert 2 <= len(a.plan.scenes) <= 7
    on_screen = [s for code in a.codes for s in shown_strings(code)]
    on_screen += [s.title for s in a.plan.scenes] + [p for s in a.plan.scenes for p in s.key_points]
    assert not [s for s in on_screen if "…" in s or s.rstrip().endswith("...")]
    cues = [c for n in a.narrations for c in split_sentences(n)]
    assert not [c for c in cues if "…" in c]
    assert len(cues) == len(set(cues)), f"a sentence is narrated twice: {cues}"
    # every cue ends a sentence: terminal punctuation, and not an abbreviation's dot
    assert all(re.search(r"[.!?]$", c) for c in cues), cues
    assert not [c for c in cues if re.search(r"\b(?:e\.g|i\.e|etc|Dr|vs)\.$", c)]


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.topic)
def test_every_context_sentence_is_shown_whole_and_narrated_once(
    topic: Topic, authored: dict[str, Authored]
) -> None:
    a = authored[topic.topic]
    screen = " ".join(flat(s) for code in a.codes for s in shown_strings(code))
    cues = [c for n in a.narrations for c in split_sentences(n)]
    for sentence in topic.sentences:  # whole, but for its formulas: they are typeset instead
        written = flat(tx.without_formulas(tx.on_screen(sentence), list(topic.formulas)))
        assert written in screen, f"not on screen: {written!r}"
        # in one scene, never split across two
        assert any(tx.on_screen(sentence) in s.key_points for s in a.plan.scenes), sentence
    # each sentence is one cue: as many narrated context sentences as the context has
    spoken_context = [c for c in cues if c != f"{topic.topic}."]
    assert len(spoken_context) == len(topic.sentences), spoken_context
    # no closing filler: the summary is silent
    assert not [c for c in cues if re.search(r"That was the context|Thanks for watching", c)]
    summary = a.plan.scenes[-1]
    assert summary.title == "Summary" and not summary.narration
    # it shows complete sentences of the context (a formula's sentence as it is said)
    assert summary.key_points and all(flat(p) in screen for p in summary.key_points)
    said = [flat(n) for n in a.narrations]
    if not any(
        flat(p) == flat(s.replace("$", "")) for s in topic.sentences for p in summary.key_points
    ):
        assert len(summary.key_points) == 1 and any(summary.key_points[0] in n for n in said)
        return
    assert all(
        any(flat(p) == flat(s.replace("$", "")) for s in topic.sentences)
        for p in summary.key_points
    )


@pytest.mark.parametrize("topic", [t for t in TOPICS if t.formulas], ids=lambda t: t.topic)
def test_each_formula_is_typeset_with_its_legend(
    topic: Topic, authored: dict[str, Authored]
) -> None:
    a = authored[topic.topic]
    code = "\n".join(a.codes)
    typeset = [
        n.args[0].value
        for c in a.codes
        for n in ast.walk(ast.parse(c))
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "MathTex"
        if n.args and isinstance(n.args[0], ast.Constant)
    ]
    text = [s for c in a.codes for s in shown_strings(c) if s not in typeset]
    for written, latex in topic.formulas.items():
        assert sum(latex in m for m in typeset) == 1, f"{written!r} not typeset once: {typeset}"
        assert not [s for s in text if written in s], "shown raw beside the typeset formula"
        spoken = " ".join(a.narrations)
        assert written not in spoken  # read out in words, not symbols
    for meaning in topic.legend:
        assert re.search(rf"words\(': {re.escape(meaning)}'", code), f"no legend for {meaning!r}"


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.topic)
def test_visuals_come_from_the_content(topic: Topic, authored: dict[str, Authored]) -> None:
    construct = "\n".join(c[c.index("class Scene") :] for c in authored[topic.topic].codes)
    used = set(re.findall(r"\bvisual_(\w+)\(", construct))
    assert used == set(topic.visuals)
    assert "Square(color=GREEN)" not in construct and "Triangle(color=RED)" not in construct


async def test_code_follows_the_narration_timing() -> None:
    topic = TOPICS[6]  # binary search: one sentence per beat
    client = ModelClient(None)
    plan, _ = await authoring.plan_video(client, MODEL, topic.topic, topic.context)
    scene = plan.scenes[1]
    cues = [
        Cue(start=2.0 + 5 * i, end=6.0 + 5 * i, text=s)
        for i, s in enumerate(split_sentences(scene.narration))
    ]
    code, _ = await authoring.write_scene_code(
        client, MODEL, topic.topic, scene, 3, None, None, cues
    )
    # simulate the scene's clock: each sentence's text is faded in when its cue starts
    t, appear = 0.0, {}
    for line in code[code.index("def construct") :].splitlines():
        if m := re.search(r"self\.wait\(([\d.]+)\)", line):
            t += float(m.group(1))
        elif m := re.search(r"self\.play\((.*), run_time=([\d.]+)\)", line):
            for name in re.findall(r"FadeIn\((t\d+)_0", m.group(1)):
                appear[int(name[1:])] = t
            t += float(m.group(2))
    assert sorted(appear) == list(range(len(cues)))
    for i, cue in enumerate(cues):
        assert abs(appear[i] - cue.start) < 0.06, (i, appear[i], cue.start)
    assert abs(t - cues[-1].end) < 0.06


def test_file_touching_tex_never_reaches_the_code() -> None:
    hostile = (
        r"Watch this: $x = \input{/etc/passwd} + \openin5=/etc/shadow \write18{id}$."
        r" Also \catcode`\^=7 and ^^5cinput{/etc/hosts} y = 2x. Nothing else."
    )

    async def go() -> Authored:
        return await author(Topic("Hostile \\include{secret}", [hostile]))

    a = asyncio.run(go())
    code = "\n".join(a.codes)
    for bad in ("\\input", "\\openin", "\\write18", "\\catcode", "^^", "\\include", "5cinput"):
        assert bad not in code, bad


RENDER = [  # a formula or visual scene of each, rendered in the jail: LaTeX compiles, visuals draw
    "Malus's law", "Ideal gas law", "The derivative", "Compound interest", "Survey results",
    "Absolute value", "Binary search", "Pythagorean theorem", "Newton's second law",
    "Taylor series", "Golden ratio", "Pendulum",
]  # fmt: skip


async def test_formula_and_visual_scenes_render(
    tmp_path: Path, authored: dict[str, Authored]
) -> None:
    gate = asyncio.Semaphore(2)

    async def render(name: str) -> tuple[str, str | None]:
        codes = authored[name].codes
        code = next(
            c
            for c in codes
            if re.search(r"MathTex\(|= visual_\w+\(|place\(visual_", c.split("class Scene")[1])
        )
        async with gate:
            work = tmp_path / re.sub(r"\W", "_", name)
            work.mkdir()
            r = await sandbox.render(code, "low", work, timeout_s=240, cpu_s=300)
        return name, None if r.ok and not r.layout else f"{r.error} {r.layout}"

    results = await asyncio.gather(*(render(n) for n in RENDER))
    assert [r for r in results if r[1]] == []
