"""Training loop of the two towers: sampled softmax over in-batch negatives with logQ correction,
AdamW, and early stopping on a validation NDCG@10 carved from the training data itself.

Each training example is one (user, item) pair of the training matrix. The user side sees a
window of up to ``history_len`` of the user's *other* items (the target is masked out, so the
tower cannot learn to find the answer in its input), and a share of user ids is swapped for
the out-of-vocabulary row so the tower also learns to serve users from history alone.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from recstack.data.dataset import Dataset
from recstack.models.two_tower.model import ItemTower, UserTower
from recstack.progress import ProgressTask

NDCG_K = 10


def logq_logits(logits: torch.Tensor, item_prob: torch.Tensor) -> torch.Tensor:
    """Correct in-batch logits for popularity sampling: ``logits[:, j] - log(item_prob[j])``.

    In-batch negatives are drawn in proportion to item frequency, so without the correction
    popular items are over-penalised as negatives; subtracting their log sampling probability
    makes the batch softmax an unbiased estimate of the full softmax (Yi et al., 2019).

    >>> logq_logits(torch.tensor([[1.0, 2.0]]), torch.tensor([0.5, 0.25])).round(decimals=4)
    tensor([[1.6931, 3.3863]])
    """
    return logits - torch.log(item_prob).unsqueeze(0)


def in_batch_softmax_loss(
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
    items: torch.Tensor,
    item_prob: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Cross-entropy of each user against its own item among the batch's items.

    Columns holding the same item as the row's positive (repeats within the batch) are masked
    out, so an item is never its own negative.
    """
    logits = logq_logits(user_vectors @ item_vectors.T / temperature, item_prob)
    same_item = items.unsqueeze(0) == items.unsqueeze(1)
    same_item.fill_diagonal_(False)
    logits = logits.masked_fill(same_item, float("-inf"))
    target = torch.arange(len(items), device=logits.device)
    return F.cross_entropy(logits, target)


def ndcg_at_k(scores: np.ndarray, relevant: sp.csr_matrix, k: int = NDCG_K) -> float:
    """Mean binary NDCG@k of score rows against ``relevant`` rows (rows without any skipped).

    Row 0 hits at rank 2 (1/log2(3) = 0.631 of an ideal 1); row 1 hits at rank 1 of an ideal
    1.631, so 0.613; the mean is 0.622.

    >>> rel = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1]]))
    >>> round(ndcg_at_k(np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]]), rel, k=2), 3)
    0.622
    """
    values = ndcg_rows(scores, relevant, k)
    return float(np.mean(values)) if len(values) else 0.0


def ndcg_rows(scores: np.ndarray, relevant: sp.csr_matrix, k: int = NDCG_K) -> np.ndarray:
    """Binary NDCG@k of each score row that has relevant items."""
    relevant = sp.csr_matrix(relevant)
    counts = np.diff(relevant.indptr)
    rows = np.flatnonzero(counts > 0)
    k = min(k, scores.shape[1])
    if len(rows) == 0 or k == 0:
        return np.zeros(0)
    top = np.argpartition(-scores[rows], k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores[rows], top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    hits = np.asarray(relevant[rows][np.arange(len(rows))[:, None], top].todense()) > 0
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(counts[rows], k) - 1]
    return (hits * discount).sum(axis=1) / ideal


@dataclass(frozen=True)
class ValidationSplit:
    """Held-out last interactions of some users: ``relevant`` rows align with ``users``."""

    users: np.ndarray
    relevant: sp.csr_matrix


def holdout_validation(
    dataset: Dataset,
    fraction: float,
    holdout_share: float,
    rng: np.random.Generator,
    latest: bool = False,
    max_users: int = 5000,
    min_items: int = 5,
) -> tuple[sp.csr_matrix, ValidationSplit | None]:
    """Split the training matrix into fit and validation parts, using training data only.

    A ``fraction`` of the users with at least ``min_items`` distinct items (at most
    ``max_users``) lose ``holdout_share`` of their items (at least one) to the validation set:
    their latest items if ``latest``, else a random choice. Returns the remaining matrix and
    the split (None if no user qualifies).
    """
    matrix = dataset.matrix
    counts = np.diff(matrix.indptr)
    eligible = np.flatnonzero(counts >= min_items)
    n_val = min(max_users, int(round(fraction * len(eligible))))
    if n_val == 0:
        return matrix, None
    users = np.sort(rng.choice(eligible, size=n_val, replace=False))
    events = pd.DataFrame(
        {"user": dataset.user_idx, "item": dataset.item_idx, "ts": dataset.timestamp}
    )
    events = events[np.isin(events["user"].to_numpy(), users)]
    last = events.groupby(["user", "item"], sort=True)["ts"].max().reset_index()
    last["key"] = last["ts"].to_numpy() if latest else rng.random(len(last))
    last = last.sort_values(["user", "key", "item"], kind="stable")
    n_per_user = last.groupby("user")["item"].transform("size").to_numpy()
    rank_from_end = n_per_user - 1 - last.groupby("user").cumcount().to_numpy()
    n_hold = np.maximum(1, np.floor(holdout_share * n_per_user)).astype(np.int64)
    held = last[rank_from_end < n_hold]
    held_users, held_items = held["user"].to_numpy(), held["item"].to_numpy()
    held_matrix = sp.csr_matrix(
        (np.ones(len(held), dtype=np.float32), (held_users, held_items)), shape=matrix.shape
    )
    remaining = matrix - matrix.multiply(held_matrix)
    remaining.eliminate_zeros()
    return sp.csr_matrix(remaining, dtype=np.float32), ValidationSplit(users, held_matrix[users])


def history_bags(histories: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat item indices, bag offsets and per-row normalised weights of a history matrix."""
    h = sp.csr_matrix(histories, dtype=np.float32)
    row_sums = np.asarray(h.sum(axis=1)).ravel()
    row_sums[row_sums == 0] = 1.0
    weights = h.data / np.repeat(row_sums, np.diff(h.indptr))
    return (
        torch.from_numpy(h.indices.astype(np.int64)),
        torch.from_numpy(h.indptr[:-1].astype(np.int64)),
        torch.from_numpy(weights.astype(np.float32)),
    )


@torch.no_grad()
def encode_users(
    tower: UserTower, histories: sp.csr_matrix, users: np.ndarray, batch: int = 4096
) -> np.ndarray:
    """``(n, dim)`` user vectors from ids (-1 for unknown) and history rows."""
    tower.eval()
    h = sp.csr_matrix(histories)
    out = []
    for lo in range(0, h.shape[0], batch):
        flat, offsets, weights = history_bags(h[lo : lo + batch])
        ids = torch.from_numpy(np.asarray(users[lo : lo + batch], dtype=np.int64))
        out.append(tower(ids, flat, weights, offsets).numpy())
    if not out:
        return np.zeros((0, tower.mlp[-1].out_features), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


@torch.no_grad()
def encode_items(tower: ItemTower, n_items: int, batch: int = 8192) -> np.ndarray:
    """``(n_items, dim)`` item vectors of every item."""
    tower.eval()
    out = [
        tower(torch.arange(lo, min(n_items, lo + batch))).numpy() for lo in range(0, n_items, batch)
    ]
    return np.concatenate(out).astype(np.float32)


class EarlyStopping:
    """Keeps the best-scoring weights and says when ``patience`` epochs brought no gain."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_score = -np.inf
        self.best_epoch = -1
        self.best_state: dict[str, dict[str, torch.Tensor]] | None = None
        self.stale_epochs = 0

    def update(self, epoch: int, score: float, modules: dict[str, torch.nn.Module]) -> bool:
        """Record an epoch's score; returns True when training should stop."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.stale_epochs = score, epoch, 0
            self.best_state = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}
        else:
            self.stale_epochs += 1
        return self.stale_epochs >= self.patience

    def restore(self, modules: dict[str, torch.nn.Module]) -> None:
        """Load the best weights back into ``modules`` (no-op if nothing was recorded)."""
        if self.best_state is not None:
            for key, module in modules.items():
                module.load_state_dict(self.best_state[key])


@dataclass
class TrainConfig:
    """Optimisation settings of one training run, taken from a ``TwoTowerConfig`` (which holds
    their documentation, ranges and defaults)."""

    epochs: int
    patience: int
    batch_size: int
    lr: float
    weight_decay: float
    temperature: float
    history_len: int
    oov_rate: float


@dataclass
class TrainingLog:
    """Per-epoch loss and validation NDCG@10, and the epoch whose weights were kept."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_ndcg: float = float("nan")


class PairSampler:
    """Shuffled (user, item) training pairs with each user's history window, batch by batch.

    A user's history window is a run of ``history_len`` items of their row, read from a copy of
    the row reshuffled every epoch, so windows of long histories are fresh random subsets.
    """

    def __init__(self, matrix: sp.csr_matrix, history_len: int, rng: np.random.Generator) -> None:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.matrix.sort_indices()
        self.users = np.repeat(np.arange(matrix.shape[0]), np.diff(self.matrix.indptr))
        self.items = self.matrix.indices.astype(np.int64)
        self.history_len = history_len
        self.rng = rng
        self.window_items = self.items
        self.window_weights = self.matrix.data
        counts = np.bincount(self.items, minlength=matrix.shape[1]).astype(np.float64)
        self.item_prob = np.maximum(counts, 1.0) / max(1.0, counts.sum())

    def __len__(self) -> int:
        return len(self.items)

    def batches(self, batch_size: int) -> list[np.ndarray]:
        """One epoch: reshuffle every history row, then the pairs, cut into batches."""
        within_rows = np.lexsort((self.rng.random(len(self.items)), self.users))
        self.window_items = self.items[within_rows]
        self.window_weights = self.matrix.data[within_rows]
        order = self.rng.permutation(len(self.items))
        return [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]

    def histories(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B, L)`` item windows of the pairs' users without the target, and row weights."""
        users, targets = self.users[pairs], self.items[pairs]
        indptr = self.matrix.indptr
        n = indptr[users + 1] - indptr[users]
        start = (self.rng.random(len(pairs)) * n).astype(np.int64)
        steps = np.arange(self.history_len)
        pos = indptr[users, None] + (start[:, None] + steps) % n[:, None]
        items = self.window_items[pos]
        keep = (steps < n[:, None]) & (items != targets[:, None])
        weights = np.where(keep, self.window_weights[pos], 0.0).astype(np.float32)
        sums = weights.sum(axis=1, keepdims=True)
        sums[sums == 0] = 1.0
        return items, weights / sums


def train_towers(
    item_tower: ItemTower,
    user_tower: UserTower,
    matrix: sp.csr_matrix,
    validation: ValidationSplit | None,
    config: TrainConfig,
    rng: np.random.Generator,
    progress: bool = False,
) -> TrainingLog:
    """Fit both towers on ``matrix`` (users x items); returns the log, best weights restored."""
    sampler = PairSampler(matrix, config.history_len, rng)
    item_prob = torch.from_numpy(sampler.item_prob.astype(np.float32))
    modules = {"item": item_tower, "user": user_tower}
    params = list(item_tower.parameters()) + list(user_tower.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    stopper = EarlyStopping(config.patience)
    log = TrainingLog()
    with ProgressTask("two-tower epochs", total=config.epochs, enabled=progress) as bar:
        for epoch in range(config.epochs):
            item_tower.train()
            user_tower.train()
            started = time.perf_counter()
            losses = []
            for pairs in sampler.batches(config.batch_size):
                if len(pairs) < 2:
                    continue
                hist, hist_w = sampler.histories(pairs)
                users = sampler.users[pairs].astype(np.int64)
                users[rng.random(len(pairs)) < config.oov_rate] = -1
                items = torch.from_numpy(sampler.items[pairs])
                u = user_tower(
                    torch.from_numpy(users), torch.from_numpy(hist), torch.from_numpy(hist_w)
                )
                v = item_tower(items)
                loss = in_batch_softmax_loss(u, v, items, item_prob[items], config.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            entry = {
                "epoch": float(epoch),
                "loss": float(np.mean(losses)) if losses else float("nan"),
            }
            stop = False
            if validation is not None:
                entry["val_ndcg"] = validation_ndcg(item_tower, user_tower, matrix, validation)
                stop = stopper.update(epoch, entry["val_ndcg"], modules)
            entry["seconds"] = time.perf_counter() - started
            log.epochs.append(entry)
            bar.update(
                completed=epoch + 1,
                description=f"two-tower loss {entry['loss']:.3f} val ndcg@10 "
                f"{entry.get('val_ndcg', float('nan')):.4f}",
            )
            if stop:
                bar.update(total=epoch + 1)
                break
    if validation is not None:
        stopper.restore(modules)
        log.best_epoch, log.best_val_ndcg = stopper.best_epoch, float(stopper.best_score)
    else:
        log.best_epoch = len(log.epochs) - 1
    return log


def validation_ndcg(
    item_tower: ItemTower,
    user_tower: UserTower,
    matrix: sp.csr_matrix,
    validation: ValidationSplit,
    max_scores: int = 1 << 24,
) -> float:
    """NDCG@10 of the validation users' held-out items, their fit items excluded.

    Users are scored in blocks of at most ``max_scores`` dense scores (64 MB of float32).
    """
    items = encode_items(item_tower, matrix.shape[1])
    batch = max(1, max_scores // max(1, matrix.shape[1]))
    values = []
    for lo in range(0, len(validation.users), batch):
        users = validation.users[lo : lo + batch]
        histories = matrix[users]
        scores = encode_users(user_tower, histories, users) @ items.T
        rows, cols = histories.nonzero()
        scores[rows, cols] = -np.inf
        values.append(ndcg_rows(scores, validation.relevant[lo : lo + batch]))
    values = np.concatenate(values) if values else np.zeros(0)
    return float(np.mean(values)) if len(values) else 0.0
