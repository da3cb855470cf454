"""The reranker's anchor: the best retriever's ranking, which the booster only corrects.

Boosting starts from ``init_score = anchor`` instead of zero, so the trees learn *corrections*
to the ranking that already works (the retriever that ranked the held-out items best on the
training lists, or their reciprocal-rank fusion). With few, shallow, monotone-constrained
trees a reranker then cannot fall far below its anchor when the score distributions shift
between training and serving — which is what happened without one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recstack.models.ranking.candidates import RRF_K


def list_ndcg(rows: np.ndarray, score: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean binary NDCG@k over the lists (rows) that hold a positive, ordering by ``score``.

    >>> list_ndcg(np.array([0, 0, 1, 1]), np.array([1.0, 2.0, 1.0, 0.0]), np.array([1, 0, 1, 0]))
    0.8154648767857288
    """
    order = np.lexsort((-score, rows))
    r, y = rows[order], labels[order] > 0
    starts = np.searchsorted(r, r, side="left")
    pos = np.arange(len(r)) - starts
    gain = np.where(y & (pos < k), 1.0 / np.log2(pos + 2.0), 0.0)
    n_rows = int(r.max()) + 1 if len(r) else 0
    dcg = np.bincount(r, weights=gain, minlength=n_rows)
    n_pos = np.bincount(r, weights=y.astype(float), minlength=n_rows).astype(int)
    ideal_table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    ideal = ideal_table[np.minimum(n_pos, k)]
    has = n_pos > 0
    return float(np.mean(dcg[has] / ideal[has])) if has.any() else 0.0


def anchor_scores(features: np.ndarray, column: int, kind: str) -> np.ndarray:
    """The anchor as a score: ``-log2(rank + 2)`` of a rank column, ``log2(K * rrf)`` of the
    fusion column (both about as steep near the top as a lambdarank score).

    >>> anchor_scores(np.array([[0.0], [2.0]]), 0, "rank").tolist()
    [-1.0, -2.0]
    """
    values = features[:, column].astype(np.float64)
    if kind == "rank":
        return -np.log2(values + 2.0)
    return np.log2(np.maximum(values * RRF_K, 1e-3))


def choose_anchor(
    features: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    retrievers: Sequence[str],
) -> tuple[int, str, dict[str, float]]:
    """``(column, kind, ndcg by option)``: the rank column or the fusion with the best NDCG@10
    on the training lists."""
    options = {f"{r}_rank": "rank" for r in retrievers}
    options["rrf"] = "rrf"
    quality = {
        name: list_ndcg(rows, anchor_scores(features, names.index(name), kind), labels)
        for name, kind in options.items()
    }
    best = max(quality, key=lambda n: quality[n])
    return names.index(best), options[best], {k: round(v, 4) for k, v in quality.items()}


def monotone_constraints(names: Sequence[str], retrievers: Sequence[str]) -> list[int]:
    """+1/-1 for features whose direction is known: better retriever evidence, more of the
    history on the candidate's attribute value, and a larger share of that value's events never
    make a candidate less likely (on the synthetic data, free shares fit noise: 1.093x the best
    retriever against 1.098x constrained, seed 42)."""
    out = []
    for name in names:
        if name.endswith("_rank") and name[: -len("_rank")] in retrievers:
            out.append(-1)
        elif (
            name.endswith(("_history_share", "_item_share"))
            or name in ("rrf", "n_retrievers")
            or (
                name.endswith(("_score", "_present", "_z")) and name.rsplit("_", 1)[0] in retrievers
            )
        ):
            out.append(1)
        else:
            out.append(0)
    return out
