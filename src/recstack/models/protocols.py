"""Capabilities a model may have beyond the ``Recommender`` contract, as runtime protocols.

Callers ask ``isinstance(model, TextSearchable)`` rather than testing a model's name, so any
model that can embed free text and grow its catalogue from text serves search and cold items,
and a renamed or second text model needs no change elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recstack.data.idmap import IdMap


@runtime_checkable
class TextSearchable(Protocol):
    """A model that places items and free-text queries in one vector space.

    ``similarity_vectors() @ encode_query(text)`` ranks items for a query (unit vectors:
    cosines); ``item_vectors()`` are the scoring vectors, row ``i`` for ``items`` index ``i``.
    """

    items: IdMap

    def encode_query(self, text: str) -> np.ndarray:
        """``(d,)`` float32 unit vector of ``text``, comparable with ``similarity_vectors``."""
        ...

    def similarity_vectors(self) -> np.ndarray:
        """``(n_items, d)`` unit-length item vectors for search and similar items."""
        ...

    def item_vectors(self) -> np.ndarray:
        """``(n_items, d')`` scoring vectors (may carry extra columns beyond the text ones)."""
        ...

    def add_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Add or re-describe items in place; returns their indices in ``items``."""
        ...

    def with_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Self:
        """A grown copy covering ``item_ids``; the original model is not changed."""
        ...


@runtime_checkable
class RatingPredictor(Protocol):
    """A model that predicts explicit ratings, so evaluation reports RMSE and MAE for it."""

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of (training user index, item index) pairs, float64."""
        ...


@runtime_checkable
class CompiledScoring(Protocol):
    """A model whose scoring can be compiled to machine code for serving, cached in a
    directory (the same scores, faster); it scores the slow way until then."""

    def compile_scoring(self, cache_dir: Path, *, background: bool = False) -> None:
        """Compile (or load from ``cache_dir``) and switch to it; in ``background`` return
        at once and switch when ready."""
        ...


@runtime_checkable
class SparseScoring(Protocol):
    """A model whose scores are 0 for most items (no evidence) and rarely negative: the rest as
    a sparse matrix, so candidates and their statistics need not touch the whole catalogue."""

    def score_sparse(
        self, histories: sp.csr_matrix, users: np.ndarray | None = None
    ) -> sp.csr_matrix:
        """``(n_rows, n_items)`` float32 CSR equal to ``score(histories, users)``."""
        ...
