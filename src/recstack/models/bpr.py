"""Bayesian Personalised Ranking (Rendle et al., 2009) trained by the ``implicit`` library.

implicit stores an item bias as the last column of the item factors and a constant 1 as the
last column of the user factors, so ``user_vector · item_vector`` is the full BPR score
(``p_u · q_i + b_i``); both vectors here keep that column.

Users the model never saw are folded in by optimising the same BPR objective for their vector
alone, item factors fixed: full-batch gradient ascent on
``Σ_i mean_j log σ(x_ui − x_uj) − λ/2 ‖p_u‖²`` over the history items ``i`` and sampled
negatives ``j`` (seeded, so the answer is deterministic).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.als import known_rows
from recstack.models.base import FactorRecommender, as_histories
from recstack.progress import ProgressTask


def bpr_fold_in(
    histories: sp.csr_matrix,
    item_factors: np.ndarray,
    *,
    learning_rate: float,
    regularization: float,
    steps: int,
    negatives: int,
    seed: int,
) -> np.ndarray:
    """BPR user vectors (bias column = 1) for ``histories`` against fixed ``item_factors``.

    Each step samples ``negatives`` items per user and moves ``p_u`` along the gradient of the
    BPR log-likelihood summed over the user's history items (averaged over the negatives),
    the same per-positive step size SGD training uses. Empty histories give ``p_u = 0``.
    """
    h = sp.csr_matrix(histories)
    n, n_items = h.shape
    q = np.asarray(item_factors, dtype=np.float32)
    v, bias = q[:, :-1], q[:, -1]
    p = np.zeros((n, v.shape[1]), dtype=np.float32)
    rows = np.repeat(np.arange(n), np.diff(h.indptr))
    if h.nnz == 0 or steps <= 0:
        return np.hstack([p, np.ones((n, 1), np.float32)])
    pos = h.indices
    v_pos, b_pos = v[pos], bias[pos]
    per_row = sp.csr_matrix(
        (np.ones(h.nnz, np.float32), (rows, np.arange(h.nnz))), shape=(n, h.nnz)
    )
    counts = np.diff(h.indptr).astype(np.float32)[:, None]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        neg = rng.integers(0, n_items, size=(n, negatives))
        v_neg = v[neg]
        x_pos = np.einsum("nd,nd->n", p[rows], v_pos) + b_pos
        x_neg = np.einsum("nd,nsd->ns", p, v_neg) + bias[neg]
        pull = _sigmoid(x_neg[rows] - x_pos[:, None]) / negatives  # (nnz, negatives)
        toward_pos = per_row @ (pull.sum(axis=1)[:, None] * v_pos)
        away_neg = np.einsum("ns,nsd->nd", per_row @ pull, v_neg)
        grad = toward_pos - away_neg - regularization * counts * p
        p += learning_rate * grad.astype(np.float32)
    return np.hstack([p, np.ones((n, 1), np.float32)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class BPRRecommender(FactorRecommender):
    """Pairwise-ranking matrix factorisation.

    Params:
        factors: latent dimensions (the vectors carry one more column for the item bias).
        learning_rate: SGD step size (also the fold-in step size).
        regularization: L2 penalty.
        iterations: training epochs.
        random_state: seed of initialisation, sampling and fold-in negatives.
        num_threads: training threads (0 = all cores; more than one makes SGD order, and so
            the exact factors, vary between runs).
        fold_in_steps: gradient steps when folding in an unknown user.
        fold_in_negatives: negatives sampled per user per fold-in step.
    """

    name: ClassVar[str] = "bpr"
    # a known user's vector is their learned factor row, whatever history is passed with it
    uses_history_for_known_users: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {
        "factors": 64,
        "learning_rate": 0.01,
        "regularization": 0.01,
        "iterations": 100,
        "random_state": 0,
        "num_threads": 0,
        "fold_in_steps": 50,
        "fold_in_negatives": 32,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if int(self.params["fold_in_negatives"]) < 1:
            raise ValueError("bpr: fold_in_negatives must be at least 1")
        d = int(self.params["factors"]) + 1
        self.user_factors = np.zeros((0, d), dtype=np.float32)
        self.item_factors = np.zeros((0, d), dtype=np.float32)

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # before limiting BLAS threads

        p = self.params
        matrix = dataset.matrix
        if matrix.nnz == 0:
            raise ConfigError("bpr: the dataset has no interactions to learn from")
        iterations = int(p["iterations"])
        with (
            threadpool_limits(1, "blas"),
            ProgressTask("bpr: training", total=iterations, enabled=progress) as task,
        ):
            model = BayesianPersonalizedRanking(
                factors=int(p["factors"]),
                learning_rate=float(p["learning_rate"]),
                regularization=float(p["regularization"]),
                iterations=iterations,
                num_threads=int(p["num_threads"]),
                random_state=p["random_state"],
            )
            model.fit(matrix, show_progress=False, callback=lambda *_: task.advance(1))
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """``(n_items, factors + 1)``: factors then the item bias."""
        return self.item_factors

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """``(n, factors + 1)``: learned for known users, BPR fold-in for the rest; last column 1.

        When every row is a known user the histories are not even looked at.
        """
        known = known_rows(users, histories.shape[0], len(self.user_factors))
        if len(known) and known.all():
            rows = np.asarray(users, dtype=np.int64)
            return np.asarray(self.user_factors)[rows].astype(np.float32, copy=False)
        h = as_histories(histories, self.n_items)
        out = np.empty((h.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        if known.any():
            out[known] = self.user_factors[np.asarray(users)[known]]
        if not known.all():
            p = self.params
            out[~known] = bpr_fold_in(
                h[~known],
                self.item_factors,
                learning_rate=float(p["learning_rate"]),
                regularization=float(p["regularization"]),
                steps=int(p["fold_in_steps"]),
                negatives=int(p["fold_in_negatives"]),
                seed=int(p["random_state"] or 0),
            )
        return out

    def similarity_vectors(self) -> np.ndarray:
        """The factor parts (the bias column says popularity, not likeness)."""
        return np.asarray(self.item_factors)[:, :-1]

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.user_factors = state["user_factors"]
        self.item_factors = state["item_factors"]
