"""Approximate inner-product search with a FAISS HNSW graph, filters included.

Filtered search passes the mask to FAISS as an ``IDSelectorBitmap`` so the graph walk only
returns allowed items. HNSW may still come back short when the allowed set is small (the walk
runs out of allowed neighbours), so two guards keep the contract that ``k`` items come back
whenever ``k`` are allowed: a very selective mask goes straight to exact search over the
allowed rows, and any row that comes back short is redone exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from recstack.index.base import (
    as_mask,
    as_vectors,
    empty_result,
    exact_search,
    read_manifest,
    write_manifest,
)

# HNSW graph settings, the one definition every index builder uses: a sparse graph (M=16)
# builds fast at every server worker start and, with ef_search=128, still finds >= 0.95 of the
# exact top-10 (tests/serving measures it on served vectors).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

EXACT_FILTER_ROWS = 2_048  # allowed sets this small are searched exactly (cheap, exact)
EXACT_FILTER_FRACTION = 0.02  # ... and so are sets under 2% of the index


def _faiss() -> Any:
    """FAISS, imported on first use (it is a core dependency, but slow to import)."""
    import faiss

    return faiss


class FaissHNSWIndex:
    """HNSW graph over the vectors (``faiss.IndexHNSWFlat``, inner-product metric).

    Args:
        M: graph degree; larger is more accurate and uses more memory.
        ef_construction: candidate list size while building (build quality).
        ef_search: candidate list size while searching (recall vs latency); raised to ``k``
            when ``k`` is larger.
    """

    kind = "faiss_hnsw"

    def __init__(
        self,
        M: int = HNSW_M,  # noqa: N803 - the HNSW literature's name
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.dim: int | None = None
        self._index: Any = None
        self._mapped = False  # the graph is a view of a file: copied before it grows

    def build(self, vectors: np.ndarray) -> Self:
        """Build a fresh graph over ``vectors``."""
        faiss = _faiss()
        v = as_vectors(vectors)
        self.dim = v.shape[1]
        self._index = faiss.IndexHNSWFlat(self.dim, self.M, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = self.ef_construction
        self._index.hnsw.efSearch = self.ef_search
        self._mapped = False
        if len(v):
            self._index.add(v)
        return self

    def add(self, vectors: np.ndarray) -> None:
        """Insert ``vectors`` into the graph; they take indices ``len(self)`` onwards."""
        if self._index is None:
            self.build(vectors)
            return
        v = as_vectors(vectors, self.dim)
        if len(v):
            if self._mapped:  # FAISS aborts the process when a mapped graph is resized
                faiss = _faiss()
                self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
                self._index.hnsw.efSearch = self.ef_search
                self._mapped = False
            self._index.add(v)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def vectors(self, ids: np.ndarray | None = None) -> np.ndarray:
        """The stored vectors (all, or the rows ``ids``), reconstructed from the flat storage."""
        n = len(self)
        if ids is None:
            return (
                self._index.reconstruct_n(0, n) if n else np.zeros((0, self.dim or 0), np.float32)
            )
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dim or 0), np.float32)
        return self._index.reconstruct_batch(ids)

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k``; exactly ``min(k, allowed)`` results per row, never fewer."""
        q = as_vectors(np.atleast_2d(queries), self.dim)
        n = len(self)
        allowed = as_mask(mask, n)
        if k <= 0:
            return empty_result(len(q), 0)
        if n == 0 or len(q) == 0:
            return empty_result(len(q), k)
        eligible = n if allowed is None else int(np.count_nonzero(allowed))
        if eligible == 0:
            return empty_result(len(q), k)
        if allowed is not None and (
            eligible <= max(EXACT_FILTER_ROWS, k) or eligible < EXACT_FILTER_FRACTION * n
        ):
            ids = np.flatnonzero(allowed)
            return exact_search(self.vectors(ids), q, k, ids=ids)
        idx, val = self._graph_search(q, k, allowed)
        short = np.count_nonzero(idx >= 0, axis=1) < min(k, eligible)
        if short.any():
            ids = np.flatnonzero(allowed) if allowed is not None else np.arange(n)
            idx[short], val[short] = exact_search(self.vectors(ids), q[short], k, ids=ids)
        return idx, val

    def _graph_search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        bitmap = None
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k)
        if allowed is not None:
            bitmap = np.packbits(allowed, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        scores, idx = self._index.search(q, k, params=params)
        del bitmap  # the selector points into it; it must live until the search returned
        idx = idx.astype(np.int64, copy=False)
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        return idx, scores

    def save(self, directory: Path | str) -> Path:
        d = Path(directory)
        write_manifest(
            d,
            self.kind,
            dim=self.dim,
            size=len(self),
            M=self.M,
            ef_construction=self.ef_construction,
            ef_search=self.ef_search,
        )
        if self._index is not None:
            _faiss().write_index(self._index, str(d / "index.faiss"))
        return d

    @classmethod
    def load(cls, directory: Path | str, mmap: bool = True) -> FaissHNSWIndex:
        """Read a saved index (``mmap`` maps the file instead of reading it, when FAISS can)."""
        faiss = _faiss()
        d = Path(directory)
        manifest = read_manifest(d)
        index = cls(
            M=int(manifest["M"]),
            ef_construction=int(manifest["ef_construction"]),
            ef_search=int(manifest["ef_search"]),
        )
        index.dim = None if manifest["dim"] is None else int(manifest["dim"])
        path = d / "index.faiss"
        if path.exists():
            # IO_FLAG_MMAP_IFC maps the vectors and the graph: processes loading the same file
            # share its pages instead of holding a copy each
            flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mmap else 0
            try:
                index._index = faiss.read_index(str(path), flags)
                index._mapped = bool(flags)
            except RuntimeError:
                index._index = faiss.read_index(str(path))
            index._index.hnsw.efSearch = index.ef_search
        return index
