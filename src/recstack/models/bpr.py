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
from pydantic import Field
from threadpoolctl import threadpool_limits

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.base import FactorRecommender
from recstack.models.config import ModelConfig
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


class BPRConfig(ModelConfig):
    """Parameters of ``BPRRecommender``."""

    factors: int = Field(
        64, ge=1, le=4096, description="Latent dimensions (vectors carry one more: the bias)."
    )
    learning_rate: float = Field(
        0.01, gt=0.0, le=10.0, description="SGD step size (also the fold-in step size)."
    )
    regularization: float = Field(0.01, ge=0.0, description="L2 penalty on the factors.")
    iterations: int = Field(100, ge=1, le=10_000, description="Training epochs.")
    random_state: int | None = Field(
        0, ge=0, description="Seed of initialisation, sampling and fold-in negatives."
    )
    num_threads: int = Field(
        0,
        ge=0,
        description="Training threads (0: all cores; more than one makes SGD order, and so the "
        "exact factors, vary between runs).",
    )
    fold_in_steps: int = Field(
        50, ge=0, description="Gradient steps when folding in a user the model never saw."
    )
    fold_in_negatives: int = Field(
        32, ge=1, description="Negatives sampled per user per fold-in step."
    )


class BPRRecommender(FactorRecommender):
    """Pairwise-ranking matrix factorisation (see ``BPRConfig`` for the parameters)."""

    name: ClassVar[str] = "bpr"
    config_class: ClassVar[type[ModelConfig]] = BPRConfig
    config: BPRConfig
    # a known user's vector is their learned factor row, whatever history is passed with it
    uses_history_for_known_users: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        d = self.config.factors + 1
        self.user_factors = np.zeros((0, d), dtype=np.float32)
        self.item_factors = np.zeros((0, d), dtype=np.float32)

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # before limiting BLAS threads

        c = self.config
        matrix = dataset.matrix
        if matrix.nnz == 0:
            raise ConfigError("bpr: the dataset has no interactions to learn from")
        iterations = c.iterations
        with (
            threadpool_limits(1, "blas"),
            ProgressTask("bpr: training", total=iterations, enabled=progress) as task,
        ):
            model = BayesianPersonalizedRanking(
                factors=c.factors,
                learning_rate=c.learning_rate,
                regularization=c.regularization,
                iterations=iterations,
                num_threads=c.num_threads,
                random_state=c.random_state,
            )
            model.fit(matrix, show_progress=False, callback=lambda *_: task.advance(1))
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """``(n_items, factors + 1)``: factors then the item bias."""
        return self.item_factors

    def fold_in_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """``(n, factors + 1)`` BPR fold-in (``bpr_fold_in``); the last column is 1."""
        c = self.config
        return bpr_fold_in(
            histories,
            self.item_factors,
            learning_rate=c.learning_rate,
            regularization=c.regularization,
            steps=c.fold_in_steps,
            negatives=c.fold_in_negatives,
            seed=c.random_state or 0,
        )

    def similarity_vectors(self) -> np.ndarray:
        """The factor parts (the bias column says popularity, not likeness)."""
        return np.asarray(self.item_factors)[:, :-1]

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.user_factors = state["user_factors"]
        self.item_factors = state["item_factors"]
