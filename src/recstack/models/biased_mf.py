"""Biased matrix factorisation for explicit ratings: ``r̂ = μ + b_u + b_i + p_uᵀq_i``.

The model the rating-prediction literature (and the seeds' RMSE/MAE targets) measure: trained
by alternating ridge regressions on the observed ratings only (the weights of the interactions,
so ratings under the default event weights). Each half-step solves every user (or item) at once:
with the other side fixed, ``[p_u, b_u]`` is the ridge solution against ``[q_i, 1]`` and the
residual ``r_ui − μ − b_i``. Unknown users are folded in by the same solve from their history.

Serving treats it as any factor model: the vectors carry the biases, ``user = [p_u, 1, μ + b_u]``
and ``item = [q_i, b_i, 1]``, so ``userᵀitem`` is the predicted rating and the ANN index, fold-in
and explanations work unchanged. Ranking by predicted rating favours items people rate highly,
not items they are likely to pick; for top-N lists on implicit data prefer ALS or EASE.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recstack.data.dataset import Dataset
from recstack.models.base import FactorRecommender, as_histories
from recstack.models.config import ModelConfig
from recstack.progress import ProgressTask

ROW_CHUNK = 4_096  # rows per block of a half-step (bounds the rows × d² normal equations)


class BiasedMFConfig(ModelConfig):
    """Parameters of ``BiasedMFRecommender``."""

    factors: int = Field(32, ge=1, le=1024, description="Latent dimensions.")
    regularization: float = Field(
        15.0, ge=0.0, description="Ridge penalty on each user's and item's factors and bias."
    )
    iterations: int = Field(12, ge=1, le=500, description="Alternating sweeps.")
    random_state: int = Field(0, ge=0, description="Seed of the factor initialisation.")


def ridge_rows(
    matrix: sp.csr_matrix, features: np.ndarray, offsets: np.ndarray, lam: float
) -> np.ndarray:
    """Per row r of ``matrix``: ``argmin_w Σ_j (m_rj − o_rj − x_jᵀw)² + λ|w|²``.

    ``features`` are the columns' ``x_j`` (n_cols, d), ``offsets`` one ``o_rj`` per stored
    entry; rows with no entries get zeros. Every row's normal equations come from two sparse
    products, ``pattern @ vec(x_j x_jᵀ)`` and ``residual @ X``, then one batched solve.

    >>> m = sp.csr_matrix(np.array([[3.0, 5.0], [0.0, 0.0]]))
    >>> ridge_rows(m, np.array([[1.0], [1.0]]), np.zeros(2), lam=0.0).round(3).tolist()
    [[4.0], [0.0]]
    """
    n_rows, d = matrix.shape[0], features.shape[1]
    x = np.asarray(features, dtype=np.float64)
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), d * d)
    residual = sp.csr_matrix(
        (np.asarray(matrix.data, dtype=np.float64) - offsets, matrix.indices, matrix.indptr),
        shape=matrix.shape,
    )
    pattern = residual.copy()
    pattern.data = np.ones_like(pattern.data)
    out = np.zeros((n_rows, d), dtype=np.float64)
    eye = lam * np.eye(d)
    for lo in range(0, n_rows, ROW_CHUNK):
        hi = min(n_rows, lo + ROW_CHUNK)
        rows = np.flatnonzero(np.diff(matrix.indptr[lo : hi + 1])) + lo
        if rows.size == 0:
            continue
        gram = np.asarray(pattern[rows] @ outer).reshape(len(rows), d, d) + eye
        rhs = np.asarray(residual[rows] @ x)
        out[rows] = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return out


class BiasedMFRecommender(FactorRecommender):
    """Rating prediction by biased MF (see ``BiasedMFConfig``); ``predict_ratings`` gives r̂."""

    name: ClassVar[str] = "biased_mf"
    config_class: ClassVar[type[ModelConfig]] = BiasedMFConfig
    config: BiasedMFConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        width = self.config.factors + 2
        self.user_factors = np.zeros((0, width), dtype=np.float32)
        self.item_factors = np.zeros((0, width), dtype=np.float32)
        self.global_mean = np.zeros(1, dtype=np.float64)

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        c = self.config
        by_user = dataset.matrix.tocsr().astype(np.float64)
        by_item = by_user.T.tocsr()
        mu = float(by_user.data.mean()) if by_user.nnz else 0.0
        rng = np.random.default_rng(c.random_state)
        q = rng.normal(0.0, 0.1, (dataset.n_items, c.factors))
        b_item = np.zeros(dataset.n_items)
        with ProgressTask("biased_mf: training", total=c.iterations, enabled=progress) as bar:
            for _ in range(c.iterations):
                item_feats = np.hstack([q, np.ones((len(q), 1))])
                w = ridge_rows(by_user, item_feats, mu + b_item[by_user.indices], c.regularization)
                p, b_user = w[:, :-1], w[:, -1]
                user_feats = np.hstack([p, np.ones((len(p), 1))])
                w = ridge_rows(by_item, user_feats, mu + b_user[by_item.indices], c.regularization)
                q, b_item = w[:, :-1], w[:, -1]
                bar.advance(1)
        self.global_mean = np.array([mu])
        self.user_factors = np.hstack([p, np.ones((len(p), 1)), (mu + b_user)[:, None]]).astype(
            np.float32
        )
        self.item_factors = np.hstack([q, b_item[:, None], np.ones((len(q), 1))]).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def similarity_vectors(self) -> np.ndarray:
        """The latent part only: the bias columns say how liked an item is, not what it is."""
        return np.asarray(self.item_factors)[:, : self.config.factors]

    def fold_in_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """The training user step on each history's ratings, items fixed."""
        h = as_histories(histories, self.n_items).astype(np.float64)
        items = np.asarray(self.item_factors, dtype=np.float64)
        k, mu = self.config.factors, float(self.global_mean[0])
        feats = np.hstack([items[:, :k], np.ones((len(items), 1))])
        w = ridge_rows(h, feats, mu + items[h.indices, k], self.config.regularization)
        ones = np.ones((h.shape[0], 1))
        return np.hstack([w[:, :-1], ones, mu + w[:, -1:]]).astype(np.float32)

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of (training user index, item index) pairs."""
        u = np.asarray(self.user_factors)[np.asarray(users, dtype=np.int64)]
        v = np.asarray(self.item_factors)[np.asarray(items, dtype=np.int64)]
        return np.einsum("ij,ij->i", u.astype(np.float64), v.astype(np.float64))

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "global_mean": self.global_mean,
        }

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.user_factors = np.asarray(state["user_factors"])
        self.item_factors = np.asarray(state["item_factors"])
        self.global_mean = np.asarray(state["global_mean"])
