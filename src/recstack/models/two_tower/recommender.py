"""TwoTowerRecommender: the fitted towers behind the ``FactorRecommender`` contract.

After training, every item's tower output is stored as ``item_vectors`` and every known user's
as ``user_factors``; the user tower itself is kept (as plain arrays in the artifact) because it
is also the fold-in: a user the model never saw is scored by running it on their history with
the out-of-vocabulary user row. Torch is imported only when a model is fitted or loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recstack.data.dataset import Dataset
from recstack.errors import RecstackError, require
from recstack.models.base import FactorRecommender, as_histories
from recstack.models.config import ModelConfig

TOWER_PREFIX = "user_tower__"
VALIDATION_HOLDOUT_SHARE = 0.2  # latest share of a validation user's items held out


@contextmanager
def torch_runtime(threads: int, deterministic: bool = False) -> Iterator[Any]:
    """Torch with ``threads`` intra-op threads (and, if asked, deterministic kernels).

    Both are process-wide torch settings, so the previous values are restored afterwards.
    """
    torch = require("torch", "torch")
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield torch
    finally:
        torch.set_num_threads(previous_threads)
        if deterministic:
            torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


class TwoTowerConfig(ModelConfig):
    """Parameters of ``TwoTowerRecommender``."""

    dim: int = Field(64, ge=1, le=4096, description="Size of the user and item vectors.")
    epochs: int = Field(20, ge=1, le=10_000, description="Maximum training epochs.")
    patience: int = Field(
        3, ge=1, description="Stop after this many epochs without a better validation NDCG@10."
    )
    batch_size: int = Field(
        1024, ge=2, description="Pairs per AdamW step; each batch's items are the negatives."
    )
    lr: float = Field(3e-3, gt=0.0, le=10.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay.")
    temperature: float = Field(
        0.07, gt=0.0, description="Softmax temperature applied to the cosines."
    )
    history_len: int = Field(
        50, ge=1, description="History items the user tower sees per training example."
    )
    use_text: bool = Field(
        True, description="Add the item text embedding (off by itself when items have no text)."
    )
    use_features: bool = Field(
        True, description="Add categorical attribute tokens (off by itself when there are none)."
    )
    oov_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of training examples served as an unknown user."
    )
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of users (with 5+ items) who lend 20% of their items to the "
        "validation set (0: no validation, train all epochs).",
    )
    val_holdout: Literal["random", "latest"] = Field(
        "random",
        description="Which items validation users lend: 'random' (steadiest stopping signal) "
        "or 'latest' (their most recent items, for catalogues that drift fast).",
    )
    random_state: int = Field(0, ge=0, description="Seed of initialisation and sampling.")
    num_threads: int = Field(0, ge=0, description="Torch threads (0: half the CPUs, at most 4).")


class TwoTowerRecommender(FactorRecommender):
    """Two-tower retrieval model trained with logQ-corrected in-batch sampled softmax.

    Item tower: id embedding + categorical attribute tokens (``EmbeddingBag``) + a projection
    of the frozen MiniLM embedding of the item's text -> MLP. User tower: user id embedding
    (with an out-of-vocabulary row) + weighted mean of the user's history item embeddings ->
    MLP. Both outputs are L2-normalised, so scores are cosines and the item vectors suit an
    inner-product ANN index. Training stops early on NDCG@10 of a validation split carved from
    the training data and keeps the best epoch's weights. Parameters: ``TwoTowerConfig``.
    """

    name: ClassVar[str] = "two_tower"
    config_class: ClassVar[type[ModelConfig]] = TwoTowerConfig
    config: TwoTowerConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        dim = self.config.dim
        self._item_vectors = np.zeros((0, dim), dtype=np.float32)
        self._user_factors = np.zeros((0, dim), dtype=np.float32)
        self._tower_arrays: dict[str, np.ndarray] = {}
        self._user_tower: Any = None
        self.training_log: list[dict[str, float]] = []
        self._fit_metrics: dict[str, float] = {}

    # ---- training ------------------------------------------------------------------------------
    def fit(self, dataset: Dataset, progress: bool = False) -> Self:
        """Train, then record the validation NDCG@10 and best epoch in ``meta.metrics``."""
        super().fit(dataset, progress=progress)
        self.meta.metrics.update(self._fit_metrics)
        return self

    def _threads(self) -> int:
        from recstack.models.text_encoder import default_torch_threads

        wanted = self.config.num_threads
        return wanted if wanted > 0 else default_torch_threads()

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        with (
            torch_runtime(self._threads(), deterministic=True) as torch,
            torch.random.fork_rng(devices=[]),  # seed our own stream, not the caller's
        ):
            from recstack.models.two_tower.model import ItemTower, UserTower
            from recstack.models.two_tower.train import (
                TrainConfig,
                encode_items,
                encode_users,
                holdout_validation,
                train_towers,
            )

            c = self.config
            seed = c.random_state
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            dim = c.dim
            item_tower = ItemTower(dataset.n_items, dim, **self._item_inputs(dataset, progress))
            user_tower = UserTower(dataset.n_users, dataset.n_items, dim)
            matrix, validation = holdout_validation(
                dataset,
                c.val_fraction,
                VALIDATION_HOLDOUT_SHARE,
                rng,
                latest=c.val_holdout == "latest",
            )
            config = TrainConfig(**{k: getattr(c, k) for k in TrainConfig.__dataclass_fields__})
            log = train_towers(item_tower, user_tower, matrix, validation, config, rng, progress)
            self.training_log = log.epochs
            self._fit_metrics = {
                "best_epoch": float(log.best_epoch),
                "epochs_run": float(len(log.epochs)),
            }
            if validation is not None:
                self._fit_metrics["val_ndcg@10"] = log.best_val_ndcg
            self._item_vectors = encode_items(item_tower, dataset.n_items)
            self._user_factors = encode_users(
                user_tower, dataset.matrix, np.arange(dataset.n_users)
            )
            self._tower_arrays = {
                TOWER_PREFIX + key.replace(".", "__"): value.detach().numpy().copy()
                for key, value in user_tower.state_dict().items()
            }
            self._user_tower = user_tower

    def _item_inputs(self, dataset: Dataset, progress: bool) -> dict[str, Any]:
        """Keyword inputs of ``ItemTower``: feature token bags and text embeddings, if used."""
        import torch

        from recstack.models.two_tower.features import ItemFeatures

        inputs: dict[str, Any] = {}
        if self.config.use_features:
            features = ItemFeatures.from_meta(dataset.item_meta, dataset.n_items)
            if features.n_tokens:
                inputs["feature_indices"] = torch.from_numpy(
                    features.matrix.indices.astype(np.int64)
                )
                inputs["feature_indptr"] = torch.from_numpy(features.matrix.indptr.astype(np.int64))
                inputs["n_tokens"] = features.n_tokens
        if self.config.use_text:
            from recstack.models.text_encoder import encode_texts, item_texts

            texts = item_texts(dataset.item_meta)
            if texts is not None:
                inputs["text"] = torch.from_numpy(encode_texts(texts, progress=progress))
        return inputs

    # ---- vectors -------------------------------------------------------------------------------
    def item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` unit-length item tower outputs."""
        return self._item_vectors

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """User tower outputs for the history rows.

        Known users (``users[r] >= 0``) use their learned id embedding with the given history;
        unknown users (-1) use the out-of-vocabulary row (fold-in). A known user with an empty
        history row gets the vector learned from their training history.
        """
        from recstack.models.two_tower.train import encode_users

        if self._user_tower is None:
            raise RecstackError("the two_tower model is not fitted: fit it or load a saved one")
        h = as_histories(histories, self.n_items)
        n_known = len(self._user_factors)
        ids = (
            np.full(h.shape[0], -1, dtype=np.int64)
            if users is None
            else np.asarray(users, dtype=np.int64)
        )
        ids = np.where((ids >= 0) & (ids < n_known), ids, -1)
        with torch_runtime(self._threads()):
            vectors = encode_users(self._user_tower, h, ids)
        stored = np.flatnonzero((np.diff(h.indptr) == 0) & (ids >= 0))
        vectors[stored] = self._user_factors[ids[stored]]
        return vectors

    # ---- persistence ---------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {
            "item_vectors": self._item_vectors,
            "user_factors": self._user_factors,
            **self._tower_arrays,
        }

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        torch = require("torch", "torch")
        from recstack.models.two_tower.model import UserTower

        self._item_vectors = np.asarray(state["item_vectors"])
        self._user_factors = np.asarray(state["user_factors"])
        self._tower_arrays = {
            k: np.asarray(v) for k, v in state.items() if k.startswith(TOWER_PREFIX)
        }
        weights = {
            k[len(TOWER_PREFIX) :].replace("__", "."): torch.from_numpy(np.array(v))
            for k, v in self._tower_arrays.items()
        }
        n_users_plus_oov, dim = weights["user_embedding.weight"].shape
        n_items = weights["history_embedding.weight"].shape[0]
        tower = UserTower(n_users_plus_oov - 1, n_items, dim)
        tower.load_state_dict(weights)
        tower.eval()
        self._user_tower = tower
