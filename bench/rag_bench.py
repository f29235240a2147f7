"""RAG benchmark: recall@5 and query latency over a labelled set, for t2m's index and plain BM25.

Run: .venv/bin/python bench/rag_bench.py. Each query lists the qualified names that answer it; a
hit is any of them in the top 5. `rag_queries.json` is the labelled set the ranking was tuned on;
`rag_heldout.json` was written after tuning and never tuned against, so it tells how well it
generalises. "plain BM25" ranks the same docstrings with the same tokenizer but
without name weighting or query expansion: the baseline FACTS measured at 0.60.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import bm25s

from t2m.authoring import docs as rag

K = 5


def recall(search, queries) -> tuple[float, list[float], list[str]]:
    hits, latencies, misses = 0, [], []
    for query, expected in queries:
        start = time.perf_counter()
        names = search(query)
        latencies.append((time.perf_counter() - start) * 1000)
        if set(names[:K]) & set(expected):
            hits += 1
        else:
            misses.append(f"{query!r}: got {[n.rsplit('.', 1)[-1] for n in names[:K]]}")
    return hits / len(queries), latencies, misses


def main() -> None:
    here = Path(__file__).parent
    queries = json.loads((here / "rag_queries.json").read_text())
    heldout = json.loads((here / "rag_heldout.json").read_text())
    start = time.perf_counter()
    index = rag.load_index(Path(tempfile.mkdtemp()))
    build_s = time.perf_counter() - start

    plain = bm25s.BM25()
    plain.index([rag.tokenize(d.doc) for d in index.docs], show_progress=False)

    def plain_search(q: str) -> list[str]:
        res, _ = plain.retrieve([rag.tokenize(q) or ["x"]], k=K, show_progress=False)
        return [index.docs[int(i)].name for i in res[0]]

    ours, lat, misses = recall(lambda q: [h.name for h in index.search(q, K)], queries)
    base, base_lat, _ = recall(plain_search, queries)
    print(
        f"corpus: {len(index.docs)} entries from manim {rag.version('manim')}; "
        f"collected and indexed in {build_s:.2f} s"
    )
    print(f"queries: {len(queries)} labelled")
    print(
        f"recall@{K}  t2m index: {ours:.3f}   plain BM25 over docstrings: {base:.3f}   "
        f"ratio {ours / base:.2f}x"
    )
    print(
        f"latency ms  t2m p50 {statistics.median(lat):.3f} p95 {sorted(lat)[int(0.95 * len(lat))]:.3f}"
        f"   plain p50 {statistics.median(base_lat):.3f}"
    )
    held, _, held_misses = recall(lambda q: [h.name for h in index.search(q, K)], heldout)
    held_base, _, _ = recall(plain_search, heldout)
    print(
        f"held-out ({len(heldout)} queries) recall@{K}  t2m: {held:.3f}   plain BM25: {held_base:.3f}"
    )
    for m in misses + held_misses:
        print("  miss:", m)


if __name__ == "__main__":
    main()
