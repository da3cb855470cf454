"""What the engine is built from: users' histories and the catalogue, free of any database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap


@dataclass(frozen=True)
class ServingSnapshot:
    """Histories (``matrix``: ``users`` x ``item_ids``, weighted) and the catalogue (``items``
    with ``item_meta`` rows in the same order). ``item_ids`` and ``items`` differ when the
    histories come from a serving image: its columns are a model's item order, fixed when it
    was written, while the catalogue is read fresh from the store."""

    users: IdMap
    item_ids: IdMap
    matrix: sp.csr_matrix
    items: IdMap
    item_meta: pd.DataFrame | None = None
    sorted_rows: bool = False

    @classmethod
    def of(cls, dataset: Dataset) -> ServingSnapshot:
        return cls(dataset.users, dataset.items, dataset.matrix.tocsr(), dataset.items,
                   dataset.item_meta)  # fmt: skip

    def texts(self, item_ids: list[str]) -> list[str]:
        """Embeddable texts of catalogue items ("" for items without metadata)."""
        from recstack.models.text_encoder import item_text

        if self.item_meta is None:
            return ["" for _ in item_ids]
        rows = self.items.indices(item_ids)
        meta = self.item_meta
        return [
            ""
            if r < 0
            else item_text(meta["title"].iat[r], meta["text"].iat[r], meta["attributes"].iat[r])
            for r in rows.tolist()
        ]

    def matrix_over(self, ids: IdMap) -> sp.csr_matrix:
        """The histories with columns at engine positions ``ids``, rows sorted by column.

        Columns that already are the first positions of ``ids`` are kept as they are (no copy
        of a memory-mapped image); otherwise they are renumbered and each row re-sorted.
        """
        m = self.matrix
        n_cols = len(self.item_ids)
        if np.array_equal(ids.ids[:n_cols], self.item_ids.ids):
            out = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], len(ids)))
            if not self.sorted_rows:
                out = out.copy()
                out.sort_indices()
            return out
        columns = ids.indices(self.item_ids.ids).astype(np.int32)
        out = sp.csr_matrix(
            (np.array(m.data, dtype=np.float32), columns[m.indices], np.array(m.indptr)),
            shape=(m.shape[0], len(ids)),
        )
        out.sort_indices()
        return out
