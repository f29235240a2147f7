"""Retrieval over the installed manim's docs, and `t2m docs search`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from t2m.authoring import doc_vectors
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


def test_an_error_message_finds_the_api_it_names(tmp_path: Path) -> None:
    """The names an error mentions, not its boilerplate ("object has no attribute"), decide; a
    manimgl name a model still writes finds what ManimCE calls it."""
    index = rag.load_index(tmp_path)
    for error, expected in [
        (
            "AttributeError: 'Axes' object has no attribute 'get_graph'",
            "manim.mobject.graphing.coordinate_systems.CoordinateSystem.plot",
        ),
        ("NameError: name 'ShowCreation' is not defined", "manim.animation.creation.Create"),
        (
            "TypeError: Mobject.next_to() got an unexpected keyword argument 'direction'",
            "manim.mobject.mobject.Mobject.next_to",
        ),
    ]:
        assert expected in [h.name for h in index.search(error, 5)], error


def test_a_question_in_plain_words_finds_the_api_by_meaning(tmp_path: Path) -> None:
    """Words the docstring does not use: BM25 alone misses these, the vectors find them."""
    index = rag.load_index(tmp_path)
    for query, expected in [
        ("a dot with a number or letter inside it", "manim.mobject.geometry.arc.LabeledDot"),
        ("objects trade places in a cycle, each moving to the next one's spot",
         "manim.animation.transform.CyclicReplace"),
    ]:  # fmt: skip
        assert expected not in [d.name for _, d in index.by_words(query)[:5]], query
        assert expected in [h.name for h in index.search(query, 5)], query


def test_vectors_are_built_once_and_found_again(tmp_path: Path) -> None:
    """Built where the environment is writable (make setup does it), else into the data dir;
    a later load reads them instead of embedding 1000 entries again."""
    docs = rag.collect()[:3]
    vectors = doc_vectors.load_vectors(docs, tmp_path)
    assert vectors.shape == (3, 384)
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-3
    saved = [p / doc_vectors.vectors_name(docs) for p in doc_vectors._places(tmp_path)]
    assert any(p.exists() for p in saved)
    path = next(p for p in saved if p.exists())
    np.save(path, np.zeros((3, 384), dtype=np.float32))
    assert not doc_vectors.load_vectors(docs, tmp_path).any()
    path.unlink()


def test_a_query_reaches_the_engine_as_bounded_printable_text() -> None:
    hostile = "\x00\x1b[31mCircle\u202e" + "x" * 100_000
    cleaned = doc_vectors.clean_query(hostile)
    assert cleaned.isprintable() and len(cleaned) == doc_vectors.QUERY_CHARS
    assert cleaned.startswith("[31mCircle")
    assert doc_vectors.embed_query(hostile).shape == (384,)
