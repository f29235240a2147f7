"""Retrieval over the installed manim's docs, and `t2m docs search`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from t2m.authoring import docs as rag


def test_corpus_is_built_from_the_installed_manim_and_cached_per_version(tmp_path: Path) -> None:
    rag.load_index.cache_clear()
    index = rag.load_index(tmp_path)
    path = rag.corpus_path(tmp_path)
    assert path.name == f"manim-{rag.version('manim')}.json" and path.exists()
    names = {d.name for d in index.docs}
    assert {"manim.mobject.geometry.arc.Circle", "manim.mobject.mobject.Mobject.next_to"} <= names
    circle = next(d for d in index.docs if d.name == "manim.mobject.geometry.arc.Circle")
    assert circle.kind == "class" and circle.signature.startswith("Circle(")
    assert ">>> " in circle.doc or "Examples" in circle.doc  # the examples come with it
    # A later load reads the cached corpus instead of collecting it again.
    cached = json.loads(path.read_text())
    cached[0]["doc"] = "SENTINEL from the cache"
    path.write_text(json.dumps(cached))
    rag.load_index.cache_clear()
    assert rag.load_index(tmp_path).docs[0].doc == "SENTINEL from the cache"
    rag.load_index.cache_clear()


def test_search_finds_the_api_a_query_describes(tmp_path: Path) -> None:
    index = rag.load_index(tmp_path)
    for query, expected in [
        ("draw a circle", "manim.mobject.geometry.arc.Circle"),
        ("render a LaTeX formula", "manim.mobject.text.tex_mobject.MathTex"),
        (
            "rectangle around an object to highlight it",
            "manim.mobject.geometry.shape_matchers.SurroundingRectangle",
        ),
        ("place an object next to another one", "manim.mobject.mobject.Mobject.next_to"),
    ]:
        hits = index.search(query, 5)
        assert expected in [h.name for h in hits], (query, [h.name for h in hits])
        assert hits == sorted(hits, key=lambda h: -h.score)
    assert index.search("the of and", 5) == []


def test_docs_search_cli(tmp_path: Path) -> None:
    t2m = str(Path(sys.executable).parent / "t2m")
    env = os.environ | {"T2M_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [t2m, "docs", "search", "fade an object in", "--k", "3", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and set(hits[0]) >= {"name", "score", "snippet"}
    assert "manim.animation.fading.FadeIn" in [h["name"] for h in hits]
    text = subprocess.run(
        [t2m, "docs", "search", "fade an object in"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert text.returncode == 0 and "1. manim." in text.stdout
