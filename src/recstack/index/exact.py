"""Exact inner-product search with numpy (BLAS): the reference every other index is held to."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from recstack.index.base import (
    as_mask,
    as_vectors,
    empty_result,
    exact_search,
    read_manifest,
    write_manifest,
)


class ExactIndex:
    """Brute-force search over all vectors; exact, and fast enough below ~100K items.

    A mask is applied by searching only the allowed rows, so filtered answers are exact too.
    """

    kind = "exact"

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self.vectors = np.zeros((0, dim or 0), dtype=np.float32)

    def build(self, vectors: np.ndarray) -> Self:
        """Keep a float32 copy of ``vectors`` as the searchable set."""
        self.vectors = as_vectors(vectors)
        self.dim = self.vectors.shape[1]
        return self

    def add(self, vectors: np.ndarray) -> None:
        """Append ``vectors``; they take indices ``len(self)`` onwards."""
        new = as_vectors(vectors, self.dim)
        self.vectors = np.concatenate([self.vectors, new]) if len(self) else new
        self.dim = new.shape[1]

    def __len__(self) -> int:
        return len(self.vectors)

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` inner products, restricted to ``mask`` when given."""
        q = as_vectors(np.atleast_2d(queries), self.dim)
        allowed = as_mask(mask, len(self))
        if k <= 0:
            return empty_result(len(q), 0)
        if allowed is None:
            return exact_search(self.vectors, q, k)
        ids = np.flatnonzero(allowed)
        return exact_search(self.vectors[ids], q, k, ids=ids)

    def save(self, directory: Path | str) -> Path:
        d = Path(directory)
        write_manifest(d, self.kind, dim=self.dim, size=len(self))
        np.save(d / "vectors.npy", self.vectors)
        return d

    @classmethod
    def load(cls, directory: Path | str, mmap: bool = True) -> ExactIndex:
        """Read a saved index; with ``mmap`` the vectors are a shared read-only memory map."""
        d = Path(directory)
        manifest = read_manifest(d)
        index = cls(dim=int(manifest["dim"]))
        index.vectors = np.load(d / "vectors.npy", mmap_mode="r" if mmap else None)
        return index
