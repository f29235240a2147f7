"""The offline model's plan: the context it is given, presented — it does not know the topic.

Every sentence of the context is narrated exactly once, in order, and shown on screen in full
(never cut): the title scene says the topic's name, "Key ideas" scenes take the sentences, and
a formula scene the ones with a formula and those naming its symbols, where they first occur; a
formula is typeset, and its sentence shows the rest. The summary shows the shortest key sentences
again, silently (no closing filler; a formula sentence in words). A scene's `key_points` are its sentences as written, one per
narrated sentence, so the code can show each while it is spoken.
"""

from __future__ import annotations

import math

from t2m.authoring.llm.offline import text as tx

WORDS_PER_SECOND = 2.6
MAX_SCENES = 7
PHRASES = {
    "en": {"ideas": "Key ideas", "part": "part", "formula": "The formula", "summary": "Summary",
           "none": "No context was given for this topic. The offline model does not know any topic:"
           " it presents the context it is given, sentence by sentence. Give it a few sentences of"
           " context, or choose a real model, for a video that explains the topic.",
           "about": "About this video"},
    "fr": {"ideas": "Idées clés", "part": "partie", "formula": "La formule", "summary": "Résumé",
           "none": "Aucun contexte n'a été donné pour ce sujet. Le modèle hors ligne ne connaît aucun"
           " sujet : il présente le contexte qu'on lui donne, phrase par phrase.",
           "about": "À propos de cette vidéo"},
    "de": {"ideas": "Kernideen", "part": "Teil", "formula": "Die Formel",
           "summary": "Zusammenfassung",
           "none": "Für dieses Thema wurde kein Kontext gegeben. Das Offline-Modell kennt kein Thema:"
           " es zeigt den Kontext, den es bekommt, Satz für Satz.",
           "about": "Über dieses Video"},
    "es": {"ideas": "Ideas clave", "part": "parte", "formula": "La fórmula", "summary": "Resumen",
           "none": "No se dio contexto para este tema. El modelo sin conexión no conoce ningún tema:"
           " presenta el contexto que recibe, frase por frase.",
           "about": "Sobre este video"},
}  # fmt: skip
PACE_SENTENCES = {"slow": 2, "normal": 3, "fast": 4}
SUMMARY_S = 4.0


def phrases(style: dict[str, str]) -> dict[str, str]:
    return PHRASES.get(style.get("language", "en").split("-")[0], PHRASES["en"])


def _duration(narration: str, pace: str) -> float:
    per = {"slow": 0.8, "fast": 1.2}.get(pace, 1.0) * WORDS_PER_SECOND
    return round(min(120.0, max(5.0, len(narration.split()) / per + 2.0)), 1)


def _scene(
    title: str,
    goal: str,
    said: list[str],
    shown: list[str],
    formula: str | None,
    style: dict[str, str],
) -> dict:
    language = style.get("language", "en")
    narration = " ".join(tx.spoken(s, language) for s in said)
    return {
        "title": title,
        "goal": goal,
        "narration": narration,
        "key_points": [tx.on_screen(s) for s in shown],
        "formula": formula,
        "duration_s": _duration(narration, tx.pace(style)),
    }


def _formula_sentences(sentences: list[str], formulas: list[str]) -> list[str]:
    """Sentences holding a formula, and sentences naming one of its symbols."""
    picked = [s for s in sentences if tx.find_formulas(s)]
    for s in sentences:
        if s not in picked and any(tx.legend(f, s) for f in formulas):
            picked.append(s)
    return [s for s in sentences if s in picked]


def plan(topic: str, context: str, style: dict[str, str] | None = None) -> dict:
    """Title scene, key-idea scenes, a formula scene when the context has one, a summary."""
    style = style or {}
    words = phrases(style)
    topic = " ".join(tx.strip_tex_io(topic).split())
    sentences = tx.sentences(context)
    formulas = tx.find_formulas(context)
    math_sentences = _formula_sentences(sentences, formulas) if formulas else []
    free = [s for s in sentences if s not in math_sentences]
    if not sentences:
        free = tx.sentences(words["none"])
    opening: list[str] = []  # the title scene says the topic's name; the context follows
    title_said = opening or [topic.rstrip(".!?") + "."]
    title_scene = _scene(topic, topic, title_said, opening, None, style)
    rest = free[len(opening) :]
    slots = MAX_SCENES - 2 - (1 if math_sentences else 0)
    per = max(PACE_SENTENCES.get(tx.pace(style), 3), math.ceil(len(rest) / slots))
    groups = [rest[i : i + per] for i in range(0, len(rest), per)]
    body: list[tuple[int, dict]] = []
    for n, group in enumerate(groups, 1):
        title = words["about"] if not sentences else words["ideas"]
        if len(groups) > 1:
            title = f"{title}, {words['part']} {n}"
        scene = _scene(title, f"{topic}: {title}", group, group, None, style)
        body.append((sentences.index(group[0]) if sentences else 0, scene))
    if math_sentences:
        title, latex = words["formula"], tx.to_latex(formulas[0])
        scene = _scene(title, f"{topic}: {title}", math_sentences, math_sentences, latex, style)
        body.append((sentences.index(math_sentences[0]), scene))
    scenes = [title_scene] + [scene for _, scene in sorted(body, key=lambda b: b[0])]
    # The summary shows the shortest key sentences again, silently: no closing filler, nothing
    # said twice; a formula sentence only in words (its formula is typeset once, in its scene).
    language = style.get("language", "en")
    recap = _recap([g[0] for g in groups] + opening) or [tx.spoken(math_sentences[0], language)]
    summary = _scene(words["summary"], f"{topic}: {words['summary']}", [], recap, None, style)
    scenes.append(summary | {"duration_s": SUMMARY_S})
    return {"title": topic, "scenes": scenes}


def _recap(candidates: list[str]) -> list[str]:
    """Up to three complete sentences for the summary, the shorter ones first, in order."""
    unique = list(dict.fromkeys(candidates))
    chosen = sorted(unique, key=len)[:3]
    return [s for s in unique if s in chosen]


def storyboard(scene: dict, style: dict[str, str] | None = None) -> dict:
    """What the templates will show, and the docs a coder would look up for it."""
    from t2m.authoring.llm.offline import visuals

    shown = scene.get("key_points") or []
    kinds = [k for k in (visuals.choose(p) for p in shown) if k]
    steps = ["Write the title at the top."]
    if scene.get("formula") or any(tx.find_formulas(p) for p in shown):
        steps.append(
            "Typeset each formula with MathTex under the title, with a legend of the"
            " symbols the context names."
        )
    steps.append("Show each sentence in full, wrapped over lines, while it is spoken.")
    if kinds:
        steps.append(
            "Beside the text, draw " + ", ".join(dict.fromkeys(kinds)).replace("_", " ") + "."
        )
    return {
        "visuals": " ".join(steps),
        "layout": "Title at the top edge; formula below it; text on the left, visual or legend on"
        " the right; everything inside the safe area.",
        "narration": scene.get("narration"),
        "doc_queries": ["display multi-line text", "arrange objects in a row or column"]
        + (["render a LaTeX math formula"] if len(steps) > 2 + bool(kinds) else [])
        + [f"draw a {k.replace('_', ' ')}" for k in dict.fromkeys(kinds)][:2],
    }
