import json

import pytest

from t2m.authoring import steps as authoring
from t2m.authoring.llm import ModelClient, offline
from t2m.authoring.llm.offline.provider import OfflineLLM
from t2m.render.static_check import static_check

TOPICS = [
    (
        "Pythagorean Theorem",
        "In a right triangle, a^2 + b^2 = c^2. The hypotenuse is the longest side.",
    ),
    ("Photosynthesis", ""),
    (
        "Compound interest",
        "Interest earns interest. The rule is $A = P(1 + r/n)^{nt}$. Start early.",
    ),
]


@pytest.mark.parametrize(("topic", "context"), TOPICS)
async def test_plan_and_code_through_litellm(topic: str, context: str) -> None:
    client = ModelClient()
    plan, usage = await authoring.plan_video(client, "offline/templates", topic, context)
    assert usage.calls == 1 and usage.prompt_tokens > 0
    assert 3 <= len(plan.scenes) <= 5
    assert plan.scenes[0].title == topic
    assert plan.scenes[-1].title == "Summary"
    assert all(s.narration.strip() for s in plan.scenes[:-1])
    assert not plan.scenes[-1].narration  # the summary is shown, not said: no filler
    for scene in plan.scenes:
        code, _ = await authoring.write_scene_code(
            client, "offline/templates", topic, scene, len(plan.scenes)
        )
        static_check(code)
        assert f"class Scene{scene.index + 1}(Scene):" in code
        if scene.formula:
            assert "MathTex(" in code


def test_formulas_in_context_become_a_math_scene() -> None:
    plan = offline.plan(*TOPICS[0])
    formulas = [s["formula"] for s in plan["scenes"] if s["formula"]]
    assert formulas == ["a^2 + b^2 = c^2"]
    dollar = offline.plan(*TOPICS[2])
    assert [s["formula"] for s in dollar["scenes"] if s["formula"]] == ["A = P(1 + r/n)^{nt}"]


def test_plan_is_deterministic_and_uses_the_context() -> None:
    context = (
        "Cells capture light. Chlorophyll absorbs red and blue light. Sugar stores the energy."
    )
    a, b = offline.plan("Photosynthesis", context), offline.plan("Photosynthesis", context)
    assert a == b
    narration = " ".join(s["narration"] for s in a["scenes"])
    assert "Chlorophyll absorbs red and blue light." in narration


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("E = mc^2", "E = mc^2"),
        ("c = sqrt(a^2 + b^2)", r"c = \sqrt{a^2 + b^2}"),
        ("F = m*a", r"F = m \cdot a"),
    ],
)
def test_to_latex(text: str, latex: str) -> None:
    assert offline.find_formulas(f"Recall that {text} holds.") == [text]
    assert offline.to_latex(text) == latex


def test_fix_answer_is_plain_text_code() -> None:
    scene = {"index": 1, "title": "Key ideas", "key_points": ["One", "Two"], "duration_s": 6}
    prompt = authoring.render_prompt(
        "fix_scene_code", {"class_name": "Scene2", "scene": scene, "code": "x", "error": "boom"}
    )
    task, data = offline.parse_prompt(prompt)
    assert task == "fix_scene_code" and data["error"] == "boom"
    code = offline.fallback_code(scene, "Scene2")
    static_check(code)
    assert "MathTex" not in code


async def test_offline_doc_queries_name_what_the_error_is_about() -> None:
    code = "c = Sector(outer_radius=2, fill_opacity=0.5)\nself.play(ShowCreation(c))\n"

    async def queries(error: str) -> list[str]:
        found, usage = await authoring.doc_queries_for_error(
            ModelClient(None), "offline/templates", "Circles", code, error
        )
        assert usage.calls == 1
        return found

    shown = await queries("NameError: name 'ShowCreation' is not defined")
    assert shown == ["ShowCreation Create"]  # the old name and what replaced it
    sector = await queries(
        '  File "scene.py", line 1, in construct\n    c = Sector(outer_radius=2, fill_opacity=0.5)'
        "\nTypeError: Mobject.__init__() got an unexpected keyword argument 'outer_radius'"
    )
    assert "Sector" in sector[0].split() and "outer_radius" in sector[0].split()
    assert await queries("RuntimeError: out of memory") == ["RuntimeError: out of memory"]


def test_unknown_prompt_gets_a_plain_answer() -> None:
    response = OfflineLLM().completion(
        model="templates", messages=[{"role": "user", "content": "hi"}]
    )
    assert "only answers" in response.choices[0].message.content
    assert json.loads(json.dumps(response.model_dump()))  # a real, serialisable ModelResponse
