"""Item attributes as features: string and list values as tokens, numbers as columns.

Any attribute works without configuration: ``genres: [..]`` and ``topic: "python"`` become
``genres=Drama`` and ``topic=python`` tokens (the most frequent ``MAX_TOKENS`` kept, rows
L2-normalised so a user-item dot product is a cosine), and numbers (``difficulty``,
``duration``, ``year``) numeric columns (the ``MAX_NUMERIC`` most often present; NaN where an
item lacks one).

Single-valued string attributes (``topic``, ``subtopic``, ``level``) are also kept whole as
per-item codes (``MAX_KEYS`` keys, each with at most half as many values as items): the
reranker reads the share of a user's history with the candidate's value, which the capped,
pooled token cosine blurs when a key has more values than ``MAX_TOKENS`` or several keys
mix. Pairs of keys (topic and level: a shelf) are kept as codes too when their joint values
still repeat.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset

MAX_TOKENS = 64  # attribute tokens kept (most frequent)
MAX_NUMERIC = 6  # numeric attributes kept
MAX_KEYS = 4  # single-valued string attributes kept as codes


def _attributes(dataset: Dataset) -> list[dict]:
    """Each item's attribute dict (empty when the item has none)."""
    n = dataset.n_items
    attrs = list(dataset.item_meta["attributes"]) if dataset.item_meta is not None else [{}] * n
    return [a if isinstance(a, dict) else {} for a in attrs]


def attribute_codes(dataset: Dataset) -> tuple[np.ndarray, list[str]]:
    """``(n_items, n_keys)`` int32 codes of the single-valued string attributes (-1 where an
    item lacks the key) and the keys, most often present first.

    A key qualifies when every value it takes is a string, it takes at least two values, and
    at most half as many as there are items (so values repeat: an id-like key says nothing).
    """
    n = dataset.n_items
    values: dict[str, dict[int, str]] = {}
    mixed: set[str] = set()
    for row, a in enumerate(_attributes(dataset)):
        for key, value in a.items():
            if isinstance(value, str):
                values.setdefault(key, {})[row] = value
            else:
                mixed.add(key)
    kept = []
    for key, by_row in values.items():
        distinct = len(set(by_row.values()))
        if key not in mixed and 2 <= distinct <= n // 2:
            kept.append(key)
    kept = sorted(kept, key=lambda k: (-len(values[k]), k))[:MAX_KEYS]
    codes = np.full((n, len(kept)), -1, dtype=np.int32)
    for j, key in enumerate(kept):
        rows = np.fromiter(values[key].keys(), dtype=np.int64, count=len(values[key]))
        labels = np.asarray(list(values[key].values()), dtype=object).astype(str)
        codes[rows, j] = np.unique(labels, return_inverse=True)[1]
    return codes, kept


def attribute_columns(dataset: Dataset) -> tuple[sp.csr_matrix, list[str], np.ndarray, list[str]]:
    """Token one-hot (L2-normalised rows) and numeric attribute matrix of the items."""
    n = dataset.n_items
    numeric: dict[str, np.ndarray] = {}
    token_rows: list[int] = []
    token_names: list[str] = []
    for row, a in enumerate(_attributes(dataset)):
        for key, value in a.items():
            if isinstance(value, bool):
                value = str(value)
            if isinstance(value, int | float):
                numeric.setdefault(key, np.full(n, np.nan, dtype=np.float32))[row] = value
            elif isinstance(value, str):
                token_rows.append(row)
                token_names.append(f"{key}={value}")
            elif isinstance(value, list | tuple):
                token_rows.extend([row] * len(value))
                token_names.extend(f"{key}={v}" for v in value)
    vocab, counts = np.unique(np.asarray(token_names, dtype=object).astype(str), return_counts=True)
    kept = vocab[np.argsort(-counts, kind="stable")[:MAX_TOKENS]].tolist()
    col = {name: j for j, name in enumerate(kept)}
    pairs = [(r, col[t]) for r, t in zip(token_rows, token_names, strict=True) if t in col]
    r_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    c_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    tokens = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), (r_idx, c_idx)), shape=(n, max(len(kept), 1))
    )
    tokens.sum_duplicates()
    tokens.data[:] = 1.0
    norms = np.sqrt(np.asarray(tokens.multiply(tokens).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    tokens = sp.csr_matrix(sp.diags(1.0 / norms) @ tokens, dtype=np.float32)
    common = sorted(numeric, key=lambda k: -int(np.isfinite(numeric[k]).sum()))[:MAX_NUMERIC]
    values = (
        np.column_stack([numeric[k] for k in common])
        if common
        else np.zeros((n, 0), dtype=np.float32)
    )
    return tokens, kept, values.astype(np.float32), common


def paired_codes(codes: np.ndarray) -> np.ndarray:
    """``codes`` with one more column per pair of keys: the pair's joint value (-1 where an
    item lacks either), kept when values still repeat (at most half as many as items) and the
    pair says more than either key alone.

    A topic and a level each say something; the course a learner picks is drawn from one
    (topic, level) shelf, which the reranker sees only as the share of the history on that
    shelf and the item's share of that shelf's events.

    >>> codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [-1, 0]] * 2)
    >>> paired_codes(codes)[:5].tolist()
    [[0, 0, 0], [0, 1, 1], [1, 0, 2], [1, 1, 3], [-1, 0, -1]]
    >>> paired_codes(codes[:, [0, 0]]).shape  # a pair that says no more than one key: dropped
    (10, 2)
    """
    n, k = codes.shape
    columns = [codes]
    for a in range(k):
        for b in range(a + 1, k):
            ok = (codes[:, a] >= 0) & (codes[:, b] >= 0)
            joint = np.full(n, -1, dtype=np.int64)
            width = int(codes[:, b].max(initial=-1)) + 1
            joint[ok] = codes[ok, a].astype(np.int64) * width + codes[ok, b]
            distinct = np.unique(joint[ok])
            alone = max(len(np.unique(codes[ok, a])), len(np.unique(codes[ok, b])))
            if not alone < len(distinct) <= n // 2:
                continue
            dense = np.full(n, -1, dtype=np.int32)
            dense[ok] = np.searchsorted(distinct, joint[ok])
            columns.append(dense[:, None])
    return np.concatenate(columns, axis=1).astype(np.int32)
