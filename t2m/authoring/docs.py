"""Retrieval over the installed Manim's own documentation: nothing to download.

The corpus is built with `inspect` from the manim package that renders the videos (classes and
functions it exports, and their public methods: qualified name, signature, docstring with its
examples). It is cached per manim version in the data dir and ranked in process with BM25
(`bm25s`), with each entry's name weighted above its prose, fused with a small embedding model's
ranking for questions in plain words (`doc_vectors`). In `bench/rag_bench.py` on the held-out set
v5 (60 queries nobody tuned on): recall@5 0.950 fused, 0.900 with BM25 alone, 0.800 plain BM25
over docstrings; ~20 ms a question, well under a millisecond an error message.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import bm25s
import numpy as np

from t2m.authoring import doc_vectors

logging.getLogger("bm25s").setLevel(logging.WARNING)

NAME_WEIGHT = 4
SUMMARY_WEIGHT = 2
NAME_MATCH_BONUS = 0.6
"""Relative boost for an entry whose short name the query says outright ("circle" → Circle)."""
CLASS_BONUS = 0.1
CANDIDATES = 60
FUSED_DEPTH = 50
"""How deep each ranking goes into the fusion."""
DENSE_WEIGHT = 0.7
"""The vectors' vote against BM25's (1.0); with RRF_K, chosen on the tuning sets (bench/rag_bench.py)."""
RRF_K = 10
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
    "same": "animationgroup",
    "sequence": "succession",
    "reversing": "uncreate unwrite",
    "reverse": "uncreate unwrite",
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
    names |= set(re.findall(r"[a-z0-9]+(?:_[a-z0-9]+)+", query.lower()))  # `squish_rate_func`
    for size in (2, 3):
        names |= {"".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    return names


_ERROR = re.compile(r"^\s*(?:[\w.]+(?:Error|Exception|Warning)):\s*(.*)", re.DOTALL)
_ERROR_WORDS = re.compile(
    r"\b(?:object|has no attribute|got an unexpected keyword argument|unexpected keyword|argument|"
    r"is not defined|name|not callable|missing \d+ required positional arguments?|takes|"
    r"positional arguments? but \d+ (?:was|were) given|cannot import|from|module|"
    r"__init__|self)\b"
)


def _identifiers(error: str) -> list[str]:
    """The API names an error message mentions: quoted names (`'Axes'`, `'get_graph'`) and
    called ones (`Axes.__init__()`, `Mobject.next_to()`), dunder methods left out."""
    found = re.findall(r"'([A-Za-z_][\w]*)'", error)
    for owner, method in re.findall(r"\b([A-Za-z_]\w*)\.(\w+)\(\)", error):
        found += [owner] + ([] if method.startswith("__") else [method])
    return list(dict.fromkeys(found))


def _replacements(error: str) -> list[str]:
    """What replaced the old API an error names (`api_changes`: `ShowCreation` → `Create`)."""
    from t2m.authoring import manim_api_changes as api_changes

    hints = " ".join(c.hint for c in api_changes.matching(error))
    return list(dict.fromkeys(re.findall(r"\b[A-Z]\w+|\b[a-z]+_\w+", hints)))


def _expand(query: str) -> str:
    """The query with everyday words' API names added; an error message becomes the names it
    mentions, each also split into words (`TextMobject` → text mobject), and what replaced the old
    ones (`ShowCreation` → Create), instead of the boilerplate ("object has no attribute") that
    matches every docstring."""
    if m := _ERROR.match(query):
        names = _identifiers(m.group(1))
        rest = _ERROR_WORDS.sub(" ", re.sub(r"'[^']*'|\w+\.\w+\(\)", " ", m.group(1)))
        query = " ".join([_split_name(n) for n in names] + _replacements(query) + [rest])
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
    """BM25 over names and prose, fused with the entries' meaning (`doc_vectors`)."""

    def __init__(self, docs: list[Doc], vectors: np.ndarray) -> None:
        self.docs = docs
        self.vectors = vectors
        self.bm25 = bm25s.BM25()
        self.bm25.index([tokenize(_document_text(d)) for d in docs], show_progress=False)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """An error message: the names it mentions decide (BM25, re-ranked). A question: BM25's
        and the vectors' rankings fused (reciprocal rank fusion), so an entry either finds high
        comes up, and one both find comes first."""
        tokens = tokenize(_expand(query))
        if not tokens:
            return []
        lexical = self._by_words(query, tokens)
        if _ERROR.match(query):
            return [Hit(d.name, round(s, 4), snippet(d)) for s, d in lexical[:k]]
        similarity = self.vectors @ doc_vectors.embed_query(query)
        by_meaning = [self.docs[int(i)] for i in np.argsort(-similarity)[:FUSED_DEPTH]]
        fused: dict[Doc, float] = {}
        for weight, ranking in (
            (1.0, [d for _, d in lexical[:FUSED_DEPTH]]),
            (DENSE_WEIGHT, by_meaning),
        ):
            for rank, doc in enumerate(ranking):
                fused[doc] = fused.get(doc, 0.0) + weight / (RRF_K + rank)
        best = sorted(fused, key=lambda d: -fused[d])[:k]
        return [Hit(d.name, round(fused[d], 4), snippet(d)) for d in best]

    def by_words(self, query: str) -> list[tuple[float, Doc]]:
        """The BM25 side of `search` alone (best first, with scores), for comparing rankings."""
        tokens = tokenize(_expand(query))
        return self._by_words(query, tokens) if tokens else []

    def _by_words(self, query: str, tokens: list[str]) -> list[tuple[float, Doc]]:
        """BM25 candidates, re-ranked: entries the query names outright, and classes, first."""
        n = min(CANDIDATES, len(self.docs))
        results, scores = self.bm25.retrieve([tokens], k=n, show_progress=False)
        named = _spoken_names(query)
        if m := _ERROR.match(query):
            named |= {n.lower() for n in _identifiers(m.group(1)) + _replacements(query)}
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
        return ranked


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
    return Index(docs, doc_vectors.load_vectors(docs, data_dir))


def format_snippets(hits: list[Hit]) -> str:
    return "\n\n".join(f"### {h.name}\n{h.snippet}" for h in hits)


def answer(data_dir: Path, queries: list[str], k: int) -> str:
    """The entries that answer the queries best, deduplicated, as prompt-ready text (ranking
    embeds each question: ~20 ms of CPU, so callers run it off their event loop)."""
    index = load_index(data_dir)
    hits: dict[str, Hit] = {}
    for query in queries:
        for hit in index.search(query, k):
            hits.setdefault(hit.name, hit)
    return format_snippets(list(hits.values()))


if __name__ == "__main__":  # `make setup` and the image build: the vectors, into the environment
    entries = collect()
    with tempfile.TemporaryDirectory() as scratch:
        doc_vectors.load_vectors(entries, Path(scratch))
    print(f"docs vectors: {Path(sys.prefix) / 'share/t2m/rag' / doc_vectors.vectors_name(entries)}")
