"""What the copy collapse costs each ranker, in the pool protocol of `cross_dataset.py`.

From that script's cached signals (CACHE_DIR/NAME.v3.npz), each source's candidates that are
copies of it are dropped before its top 5 is scored: by the vector test alone (cosine >= 0.98,
as served), by the vector test and the same words (TF-IDF cosine >= 0.8 or 0.9), or not at all.
Printed for the default at both weight pairs of issue 19 and for the three baselines, with the
share of vector copies whose words differ (TF-IDF < 0.8).

Usage: python docs/experiments/copy_rule.py CACHE_DIR NAME ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from cross_dataset import catalog_informativeness, ndcg

NEAR_DUPLICATE = 0.98
RULES = {"none": None, "vector": 0.0, "vector + words 0.8": 0.8, "vector + words 0.9": 0.9}


def copies(s: dict[str, np.ndarray], words: float | None) -> np.ndarray:
    """Which candidates the rule drops as copies of their source."""
    if words is None:
        return np.zeros(s["semantic"].shape, dtype=bool)
    return (s["semantic"] >= NEAR_DUPLICATE) & (s["tfidf"] >= words)


def rankers(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    time = catalog_informativeness(s) * s["time"]
    return {
        "default 1.0 / 1.5": s["semantic"] + 1.0 * s["tfidf"] + 1.5 * time,
        "default 1.5 / 2.0": s["semantic"] + 1.5 * s["tfidf"] + 2.0 * time,
        "semantic": s["semantic"],
        "tfidf": s["tfidf"],
        "bm25 (in the pool)": s["bm25"],
    }


def main() -> None:
    cache_dir = Path(sys.argv[1])
    print("| set | ranker | " + " | ".join(RULES) + " |")
    print("|---|---|" + "---|" * len(RULES))
    for name in sys.argv[2:]:
        with np.load(cache_dir / f"{name}.v3.npz") as saved:
            s = {key: saved[key] for key in saved.files}
        for ranker, scores in rankers(s).items():
            cells = []
            for words in RULES.values():
                dropped = np.where(copies(s, words), -np.inf, scores)
                cells.append(f"{ndcg(dropped, s):.4f}")
            print(f"| {name} | {ranker} | " + " | ".join(cells) + " |")
        vector_copies = s["semantic"] >= NEAR_DUPLICATE
        differing = float((s["tfidf"][vector_copies] < 0.8).mean()) if vector_copies.any() else 0.0
        print(f"{name}: {int(vector_copies.sum())} vector copies, {differing:.0%} with other words")


if __name__ == "__main__":
    main()
