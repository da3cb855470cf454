"""Item attributes as features: string and list values as tokens, numbers as columns.

Any attribute works without configuration: ``genres: [..]`` and ``topic: "python"`` become
``genres=Drama`` and ``topic=python`` tokens (the most frequent ``MAX_TOKENS`` kept, rows
L2-normalised so a user-item dot product is a cosine), and numbers (``difficulty``,
``duration``, ``year``) numeric columns (the ``MAX_NUMERIC`` most often present; NaN where an
item lacks one).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset

MAX_TOKENS = 64  # attribute tokens kept (most frequent)
MAX_NUMERIC = 6  # numeric attributes kept


def attribute_columns(dataset: Dataset) -> tuple[sp.csr_matrix, list[str], np.ndarray, list[str]]:
    """Token one-hot (L2-normalised rows) and numeric attribute matrix of the items."""
    n = dataset.n_items
    attrs = list(dataset.item_meta["attributes"]) if dataset.item_meta is not None else [{}] * n
    numeric: dict[str, np.ndarray] = {}
    token_rows: list[int] = []
    token_names: list[str] = []
    for row, a in enumerate(attrs):
        for key, value in (a or {}).items() if isinstance(a, dict) else ():
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
