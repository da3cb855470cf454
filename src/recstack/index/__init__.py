"""Vector indexes for maximum-inner-product search over item vectors.

``ExactIndex`` (numpy) is exact and the default for small catalogues; ``FaissHNSWIndex`` is an
approximate HNSW graph for large ones; ``QdrantIndex`` keeps the vectors in Qdrant (in process,
on disk or on a server) with payload filters. ``make_index`` picks one by size and backend and
``load_index`` reads back whichever was saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recstack.index.base import VectorIndex, read_manifest
from recstack.index.exact import ExactIndex
from recstack.index.faiss_index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    FaissHNSWIndex,
)
from recstack.index.qdrant_index import QdrantIndex

EXACT_THRESHOLD = 50_000  # below this many vectors exact search is fast enough and exact

__all__ = [
    "EXACT_THRESHOLD",
    "ExactIndex",
    "FaissHNSWIndex",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "QdrantIndex",
    "VectorIndex",
    "load_index",
    "make_index",
]


def make_index(
    vectors: np.ndarray,
    threshold: int = EXACT_THRESHOLD,
    *,
    M: int = HNSW_M,  # noqa: N803 - the HNSW literature's name
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
    backend: str = "faiss",
    qdrant_location: str = ":memory:",
) -> ExactIndex | FaissHNSWIndex | QdrantIndex:
    """A built index over ``vectors``: exact below ``threshold`` rows; at or above it a FAISS
    HNSW graph (``backend="faiss"``) or a Qdrant collection at ``qdrant_location``."""
    if len(vectors) < threshold:
        return ExactIndex().build(vectors)
    if backend == "qdrant":
        return QdrantIndex(
            qdrant_location, M=M, ef_construction=ef_construction, ef_search=ef_search
        ).build(vectors)
    if backend != "faiss":
        raise ValueError(f"unknown vector backend {backend!r}; known: faiss, qdrant")
    return FaissHNSWIndex(M=M, ef_construction=ef_construction, ef_search=ef_search).build(vectors)


def load_index(
    directory: Path | str, mmap: bool = True
) -> ExactIndex | FaissHNSWIndex | QdrantIndex:
    """Load an index saved by any ``VectorIndex.save`` (the kind is read from its manifest)."""
    kinds: dict[str, type[ExactIndex] | type[FaissHNSWIndex] | type[QdrantIndex]] = {
        ExactIndex.kind: ExactIndex,
        FaissHNSWIndex.kind: FaissHNSWIndex,
        QdrantIndex.kind: QdrantIndex,
    }
    kind = str(read_manifest(Path(directory))["kind"])
    if kind not in kinds:
        raise ValueError(f"unknown index kind {kind!r} in {directory}; known: {sorted(kinds)}")
    return kinds[kind].load(directory, mmap=mmap)
