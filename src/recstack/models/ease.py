"""EASE: a closed-form linear item-item autoencoder (Steck, 2019).

``B = I − P · diag(1 / diag(P))`` with ``P = (XᵀX + λI)⁻¹``, so ``B`` has a zero diagonal and
``score = history @ B``. It is one of the strongest baselines on dense-enough data, but ``B``
is a dense item x item matrix: the model refuses catalogues above ``max_items`` unless asked to
keep only the most popular items.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.base import Recommender, as_histories
from recstack.models.config import ModelConfig
from recstack.progress import ProgressTask

FLOAT64_MAX_ITEMS = 4_000  # below this the inverse is done in float64 (cheap and exact)
UNMODELLED_SCORE = np.float32(-1e30)  # items outside top_items rank below every modelled item
SYMMETRIZE_ROWS = 1024


def auto_l2(gram_diagonal: np.ndarray) -> float:
    """Default regularisation: 500 at MovieLens-100K scale, following the data's density.

    λ is scaled with the mean item popularity (the mean of ``diag(XᵀX)``), which is what λ
    competes with in ``XᵀX + λI``; MovieLens-100K (mean ≈ 60) gets about 500.
    """
    mean_pop = float(np.mean(gram_diagonal)) if gram_diagonal.size else 0.0
    return float(np.clip(8.0 * mean_pop, 10.0, 5_000.0))


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """``B`` from the symmetric Gram matrix ``XᵀX`` (overwritten): ``B_ij = −P_ij / P_jj``.

    ``P = (XᵀX + λI)⁻¹`` comes from a Cholesky factorisation and its inverse (LAPACK
    ``potrf``/``potri``), done in place on the Gram matrix so a large catalogue needs one dense
    matrix of memory, not three. The diagonal of ``B`` is zero.
    """
    n = gram.shape[0]
    gram[np.diag_indices(n)] += l2
    work = gram.T  # Fortran-ordered view of the same symmetric matrix: LAPACK works in place
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (work,))
    chol, info = potrf(work, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ConfigError(f"ease: X^T X + l2*I is not positive definite (l2={l2}); raise l2")
    inv, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise ConfigError(f"ease: inversion failed (lapack info {info}); raise l2")
    for lo in range(0, n, SYMMETRIZE_ROWS):  # potri fills the upper triangle; mirror it in place
        hi = min(n, lo + SYMMETRIZE_ROWS)
        inv[lo:hi, :lo] = inv[:lo, lo:hi].T
        block = inv[lo:hi, lo:hi]
        lower = np.tril_indices(hi - lo, -1)
        block[lower] = block.T[lower]
    p = inv.T if inv.flags.f_contiguous else inv  # symmetric, so the C-ordered view is P too
    p /= -np.diag(p).copy()[None, :]
    p[np.diag_indices(n)] = 0.0
    return np.ascontiguousarray(p, dtype=np.float32)


class EASEConfig(ModelConfig):
    """Parameters of ``EASERecommender``."""

    l2: float | None = Field(
        None,
        gt=0.0,
        description="Ridge regularisation lambda; None picks auto_l2 from the data (about 500 "
        "on MovieLens-100K).",
    )
    max_items: int = Field(
        20_000,
        ge=1,
        description="The largest catalogue EASE will model (B needs 4*n^2 bytes, plus as much "
        "again while fitting).",
    )
    top_items: bool = Field(
        False,
        description="When the catalogue exceeds max_items, model only the max_items most "
        "popular items instead of refusing; other items then score below every modelled item.",
    )
    num_threads: int = Field(
        0, ge=0, description="BLAS/LAPACK threads while fitting (0: library default)."
    )


class EASERecommender(Recommender):
    """Embarrassingly Shallow Autoencoder; exact, no training loop, dense item x item weights
    (see ``EASEConfig`` for the parameters)."""

    name: ClassVar[str] = "ease"
    config_class: ClassVar[type[ModelConfig]] = EASEConfig
    config: EASEConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.modelled = np.zeros(0, dtype=np.int64)
        self.l2 = np.zeros(1, dtype=np.float64)  # the lambda actually used (auto or given)

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        n_items = dataset.n_items
        max_items = self.config.max_items
        x = dataset.matrix
        if n_items > max_items:
            if not self.config.top_items:
                raise ConfigError(
                    f"ease: the catalogue has {n_items:,} items but max_items is {max_items:,}; "
                    f"EASE needs a dense {n_items:,} x {n_items:,} matrix "
                    f"(~{dense_gib(n_items):.1f} GiB, about twice that while fitting). "
                    "Use itemknn or als for large catalogues, raise max_items, or set "
                    "top_items=true to model only the most popular items."
                )
            popularity = np.diff(x.tocsc().indptr)
            modelled = np.sort(np.argsort(-popularity, kind="stable")[:max_items])
        else:
            modelled = np.arange(n_items)
        x_kept = x[:, modelled] if len(modelled) < n_items else x
        with ProgressTask("ease: closed form", total=2, enabled=progress) as task:
            dtype = np.float64 if len(modelled) <= FLOAT64_MAX_ITEMS else np.float32
            gram = (x_kept.T @ x_kept).toarray().astype(dtype, copy=False)
            task.advance(1)
            l2 = self.config.l2
            self.l2 = np.array([auto_l2(np.diag(gram)) if l2 is None else l2], dtype=np.float64)
            threads = self.config.num_threads
            limits = threadpool_limits(threads, "blas") if threads > 0 else nullcontext()
            with limits:
                self.weights = ease_weights(np.ascontiguousarray(gram), float(self.l2[0]))
            task.advance(1)
        self.modelled = modelled.astype(np.int64)

    def _full_width(self, partial: np.ndarray) -> np.ndarray:
        if len(self.modelled) == self.n_items:
            return partial
        out = np.full((partial.shape[0], self.n_items), UNMODELLED_SCORE, dtype=np.float32)
        out[:, self.modelled] = partial
        return out

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """``histories @ B`` (the history product is also the fold-in of an unknown user)."""
        h = as_histories(histories, self.n_items)
        if len(self.modelled) < self.n_items:
            h = h[:, self.modelled]
        return self._full_width(np.asarray(h @ self.weights, dtype=np.float32))

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Row ``B[item]``: the scores a one-item history gives every item."""
        items = np.asarray(items, dtype=np.int64)
        position = self._positions(items)
        rows = np.zeros((len(items), len(self.modelled)), dtype=np.float32)
        known = position >= 0
        rows[known] = self.weights[position[known]]
        return self._full_width(rows)

    def explain(self, history: sp.csr_matrix, item: int, top: int = 3) -> list[tuple[int, float]]:
        """History items ``j`` with the largest terms ``h_j * B[j, item]`` of the score."""
        h = as_histories(history, self.n_items)
        target = self._positions(np.array([item]))[0]
        if h.nnz == 0 or target < 0:
            return []
        sources = self._positions(h.indices)
        known = sources >= 0
        votes = np.zeros(h.nnz, dtype=np.float64)
        votes[known] = self.weights[sources[known], target] * h.data[known]
        order = np.argsort(-votes, kind="stable")[:top]
        return [(int(h.indices[j]), float(votes[j])) for j in order if votes[j] > 0]

    def _positions(self, items: np.ndarray) -> np.ndarray:
        """Row of each item in ``B``, -1 for items outside the modelled set."""
        if len(self.modelled) == self.n_items:
            return np.asarray(items, dtype=np.int64)
        pos = np.searchsorted(self.modelled, items)
        pos = np.minimum(pos, len(self.modelled) - 1)
        return np.where(self.modelled[pos] == items, pos, -1)

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {
            "weights": self.weights,
            "modelled": self.modelled,
            "l2": self.l2,
        }

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.weights = state["weights"]
        self.modelled = state["modelled"]
        self.l2 = state["l2"]


def dense_gib(n_items: int) -> float:
    """GiB of one dense float32 ``n_items x n_items`` matrix."""
    return 4.0 * n_items * n_items / 2**30
