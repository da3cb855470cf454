"""The VectorIndex protocol: maximum-inner-product search over item vectors, with filters.

Serving keeps one index over a model's item vectors and asks it for the ``k`` items with the
largest ``query · item``. Every index answers in the same shape: ``(idx, scores)`` of shape
``(m, k)``, best first, padded with index -1 and score ``-inf`` when fewer than ``k`` items are
eligible. A boolean ``mask`` (one flag per item, shared by all queries) restricts the answer to
the allowed items; an index must still return ``k`` items whenever ``k`` are allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np

from recstack.topk import top_k

MANIFEST = "index.json"
QUERY_BATCH = 1024  # queries scored densely at once in exact search


@runtime_checkable
class VectorIndex(Protocol):
    """What serving needs from a vector index (see module docstring for the result shape)."""

    def build(self, vectors: np.ndarray) -> Self:
        """Index ``(n, d)`` float32 ``vectors`` (replacing any previous content)."""
        ...

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products: ``(idx int64 (m, k), scores float32 (m, k))``."""
        ...

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; they get the next indices (a new catalogue item)."""
        ...

    def __len__(self) -> int: ...

    def save(self, directory: Path | str) -> Path:
        """Write the index to ``directory``; ``load_index`` reads it back."""
        ...


def as_vectors(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate and coerce to C-contiguous float32 ``(n, d)`` (matching ``dim`` if given)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be a 2-d (n, d) array, got shape {v.shape}")
    if dim is not None and v.shape[1] != dim:
        raise ValueError(f"vectors have dimension {v.shape[1]}, the index holds dimension {dim}")
    if not np.isfinite(v).all():
        raise ValueError("vectors contain NaN or infinite values")
    return v


def as_mask(mask: np.ndarray | None, n: int) -> np.ndarray | None:
    """Validate a per-item boolean mask of length ``n`` (None means every item is allowed)."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != (n,):
        raise ValueError(f"mask must have one flag per indexed item ({n}), got shape {m.shape}")
    return m


def empty_result(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(m, k)`` result with nothing found: index -1, score -inf."""
    return np.full((m, k), -1, dtype=np.int64), np.full((m, k), -np.inf, dtype=np.float32)


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` inner product of ``queries`` against ``vectors`` (BLAS).

    ``ids`` names the rows of ``vectors`` (e.g. the eligible subset of a larger index);
    results are reported in those ids. Ties go in ``recstack.topk.tie_key`` order.
    """
    m, n = len(queries), len(vectors)
    idx_out, val_out = empty_result(m, k)
    kk = min(k, n)
    if kk == 0 or m == 0:
        return idx_out, val_out
    for lo in range(0, m, QUERY_BATCH):
        hi = min(m, lo + QUERY_BATCH)
        best, vals = top_k(queries[lo:hi] @ vectors.T, kk)
        idx_out[lo:hi, :kk] = best if ids is None else ids[best]
        val_out[lo:hi, :kk] = vals
    return idx_out, val_out


def write_manifest(directory: Path, kind: str, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(json.dumps({"kind": kind, **fields}, indent=2))


def read_manifest(directory: Path) -> dict[str, object]:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a saved vector index")
    return json.loads(path.read_text())
