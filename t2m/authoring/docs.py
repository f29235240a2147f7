"""Retrieval over the installed Manim's own documentation: nothing to download.

The corpus is built with `inspect` from the manim package that renders the videos (classes and
functions it exports, and their public methods: qualified name, signature, docstring with its
examples). It is cached per manim version in the data dir and ranked in process with BM25
(`bm25s`), with each entry's name weighted above its prose: in `bench/rag_bench.py` that beats
plain BM25 over docstrings by a wide margin at well under a millisecond per query.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import bm25s

logging.getLogger("bm25s").setLevel(logging.WARNING)

NAME_WEIGHT = 4
SUMMARY_WEIGHT = 2
NAME_MATCH_BONUS = 0.6
"""Relative boost for an entry whose short name the query says outright ("circle" → Circle)."""
CLASS_BONUS = 0.1
CANDIDATES = 60
SNIPPET_CHARS = 600
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "use",
        "using",
        "want",
        "what",
        "when",
        "which",
        "with",
        "you",
        "your",
        "me",
        "my",
        "do",
        "does",
        "make",
        "show",
    ]
)
# A few everyday words for what Manim names otherwise, so a plain-language query finds the API.
_SYNONYMS = {
    "formula": "mathtex tex latex equation",
    "equation": "mathtex tex latex",
    "latex": "mathtex tex",
    "math": "mathtex",
    "label": "text",
    "words": "text",
    "write": "write text",
    "appear": "fadein create",
    "disappear": "fadeout uncreate",
    "graph": "axes plot",
    "plot": "axes plot",
    "chart": "barchart",
    "highlight": "indicate surroundingrectangle circumscribe",
    "box": "surroundingrectangle rectangle",
    "morph": "transform",
    "turn": "rotate",
    "spin": "rotate",
    "grow": "growfromcenter",
    "bigger": "scale",
    "smaller": "scale",
    "camera": "movingcamerascene camera",
    "zoom": "movingcamerascene zoomedscene",
    "3d": "threedscene threedaxes",
    "arrange": "arrange vgroup",
    "group": "vgroup group",
    "position": "move_to next_to shift",
    "dot": "dot",
    "table": "table mathtable",
    "code": "code",
    "brace": "brace bracelabel",
    "matrix": "matrix",
    "wait": "wait",
    "pause": "wait",
    "handwrite": "write",
    "color": "set_color",
    "colour": "set_color",
    "lag": "laggedstart",
    "simultaneously": "animationgroup",
    "counter": "decimalnumber valuetracker",
}


@dataclass(frozen=True)
class Doc:
    name: str
    """Qualified name, e.g. `manim.mobject.geometry.arc.Circle`."""
    kind: str
    signature: str
    doc: str


@dataclass(frozen=True)
class Hit:
    name: str
    score: float
    snippet: str


def collect() -> list[Doc]:
    """Every class and function `from manim import *` gives, and their documented methods."""
    import manim

    docs: dict[str, Doc] = {}
    for attr in dir(manim):
        obj = getattr(manim, attr)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        module = getattr(obj, "__module__", "") or ""
        if not module.startswith("manim"):
            continue
        qualified = f"{module}.{obj.__qualname__}"
        kind = "class" if inspect.isclass(obj) else "function"
        docs[qualified] = Doc(qualified, kind, _signature(attr, obj), inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            for name, member in vars(obj).items():
                if name.startswith("_") or not inspect.isfunction(member) or not member.__doc__:
                    continue
                q = f"{qualified}.{name}"
                docs[q] = Doc(q, "method", _signature(name, member), inspect.getdoc(member) or "")
    return sorted(docs.values(), key=lambda d: d.name)


def _signature(name: str, obj: Callable[..., object]) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _split_name(name: str) -> str:
    """`SurroundingRectangle` → `surroundingrectangle surrounding rectangle`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ")
    return f"{name.lower()} {words.lower()}"


def tokenize(text: str) -> list[str]:
    tokens = []
    for word in re.findall(r"[a-z0-9_]+", text.lower()):
        if word in _STOPWORDS or len(word) < 2:
            continue
        tokens.append(_stem(word))
    return tokens


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _spoken_names(query: str) -> set[str]:
    """API names a query may say in words: each word, and runs of 2–3 words written together
    ("bar chart" → barchart, "surrounding rectangle" → surroundingrectangle)."""
    words = re.findall(r"[a-z0-9]+", query.lower())
    names = set(words) | {w[:-1] for w in words if w.endswith("s")}
    for size in (2, 3):
        names |= {"".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    return names


def _expand(query: str) -> str:
    words = re.findall(r"[a-z0-9]+", query.lower())
    return query + " " + " ".join(_SYNONYMS.get(w, "") for w in words)


def _document_text(doc: Doc) -> str:
    short = doc.name.rsplit(".", 1)[-1]
    owner = doc.name.rsplit(".", 2)[-2] if doc.kind == "method" else ""
    summary = doc.doc.split("\n\n", 1)[0]
    parts = [_split_name(short)] * NAME_WEIGHT + [summary] * SUMMARY_WEIGHT
    parts += [_split_name(owner), doc.signature, doc.doc]
    return " ".join(parts)


class Index:
    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self.bm25 = bm25s.BM25()
        self.bm25.index([tokenize(_document_text(d)) for d in docs], show_progress=False)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """BM25 candidates, re-ranked: entries the query names outright, and classes, first."""
        tokens = tokenize(_expand(query))
        if not tokens:
            return []
        n = min(CANDIDATES, len(self.docs))
        results, scores = self.bm25.retrieve([tokens], k=n, show_progress=False)
        named = _spoken_names(query)
        top = float(scores[0][0]) or 1.0
        ranked = []
        for i, score in zip(results[0], scores[0], strict=True):
            if score <= 0:
                continue
            doc = self.docs[int(i)]
            short = doc.name.rsplit(".", 1)[-1].lower()
            bonus = NAME_MATCH_BONUS * top * (short in named)
            bonus += CLASS_BONUS * top * (doc.kind == "class")
            ranked.append((float(score) + bonus, doc))
        ranked.sort(key=lambda r: -r[0])
        return [Hit(d.name, round(s, 4), snippet(d)) for s, d in ranked[:k]]


def snippet(doc: Doc) -> str:
    text = f"{doc.signature}\n{doc.doc}".strip()
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "…"


def corpus_path(data_dir: Path) -> Path:
    return Path(data_dir) / "rag" / f"manim-{version('manim')}.json"


@cache
def load_index(data_dir: Path) -> Index:
    """The index for the installed manim, from the cached corpus (built on first use)."""
    path = corpus_path(data_dir)
    if path.exists():
        docs = [Doc(**d) for d in json.loads(path.read_text())]
    else:
        docs = collect()
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name: several threads or workers may build it at once.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps([asdict(d) for d in docs]))
        os.replace(tmp, path)
    return Index(docs)


def format_snippets(hits: list[Hit]) -> str:
    return "\n\n".join(f"### {h.name}\n{h.snippet}" for h in hits)
