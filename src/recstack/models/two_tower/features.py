"""Categorical item features for the item tower: a token vocabulary over item attributes.

Every categorical attribute value becomes a token ``key=value`` (``genres=Comedy``,
``level=2``); an item is the bag of its tokens, fed to an ``EmbeddingBag``. Tokens carried by
fewer than ``min_count`` items are dropped: a token unique to one item cannot generalise beyond
what that item's own id embedding already learns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


def attribute_tokens(attributes: object, max_list_len: int = 64) -> list[str]:
    """The ``key=value`` tokens of one item's attribute dict (floats and nested dicts skipped).

    >>> attribute_tokens({"genres": ["Drama", "War"], "level": 2, "price": 9.5, "new": True})
    ['genres=Drama', 'genres=War', 'level=2', 'new=True']
    """
    if not isinstance(attributes, dict):
        return []
    tokens: list[str] = []
    for key, value in attributes.items():
        values = value[:max_list_len] if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, bool | int | str) and str(v).strip():
                tokens.append(f"{key}={str(v).strip()}")
    return list(dict.fromkeys(tokens))


@dataclass(frozen=True)
class ItemFeatures:
    """Multi-hot item x token matrix with its vocabulary.

    Attributes:
        vocabulary: token strings, column order of ``matrix``.
        matrix: ``(n_items, len(vocabulary))`` binary CSR; row i lists item i's tokens.
    """

    vocabulary: list[str]
    matrix: sp.csr_matrix

    @property
    def n_tokens(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def from_meta(
        cls, item_meta: pd.DataFrame | None, n_items: int, min_count: int = 2
    ) -> ItemFeatures:
        """Build the vocabulary and matrix from a Dataset's ``item_meta`` (None: no features).

        >>> meta = pd.DataFrame({"attributes": [{"g": ["a", "b"]}, {"g": ["a"]}, {}]})
        >>> f = ItemFeatures.from_meta(meta, 3)
        >>> f.vocabulary, f.matrix.toarray().tolist()
        (['g=a'], [[1.0], [1.0], [0.0]])
        """
        empty = sp.csr_matrix((n_items, 0), dtype=np.float32)
        if item_meta is None or "attributes" not in item_meta:
            return cls([], empty)
        per_item = [attribute_tokens(a) for a in item_meta["attributes"]]
        counts = Counter(t for tokens in per_item for t in tokens)
        vocabulary = sorted(t for t, c in counts.items() if c >= min_count)
        if not vocabulary:
            return cls([], empty)
        column = {t: j for j, t in enumerate(vocabulary)}
        rows, cols = [], []
        for i, tokens in enumerate(per_item):
            for t in tokens:
                j = column.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(n_items, len(vocabulary)),
        )
        matrix.sum_duplicates()
        return cls(vocabulary, matrix)
