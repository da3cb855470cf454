"""A click simulator built from held-out data, to rehearse experiments before real users see them.

The click model is position-based: a user examines position j with probability
``examination[j] = 1 / (j + 1) ** eta`` and clicks an examined item with probability
``click_relevant`` when it is in the user's held-out set (what they really went on to consume)
and ``click_noise`` otherwise, both times an optional per-user ``user_scale`` (users differ in
how readily they click: real logs show CTRs varying by an order of magnitude). A better recommender puts more held-out items high in the list,
so it earns more clicks, which is the effect an A/B test, an interleaving test and off-policy
estimators are asked to detect. The same model scores lists from an offline policy (a function
of user indices) or lists a live server returned over HTTP (``clicks_for_ids``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.experiments.analysis import ArmSample

Policy = Callable[[np.ndarray], np.ndarray]
"""User indices ``(n,)`` -> ranked item indices ``(n, k)``, padded with -1."""


@dataclass(frozen=True, eq=False)
class ClickModel:
    """Position-based clicks on held-out items (see the module docstring).

    Attributes:
        relevant: ``(n_users, n_items)`` sparse matrix, nonzero where the item is held out.
        examination: probability of examining each position.
        click_relevant: click probability of an examined held-out item.
        click_noise: click probability of any other examined item.
        user_scale: optional per-user multiplier of both click probabilities (mean 1).
    """

    relevant: sp.csr_matrix
    examination: np.ndarray
    click_relevant: float = 0.5
    click_noise: float = 0.02
    user_scale: np.ndarray | None = None

    @classmethod
    def from_heldout(
        cls,
        heldout: Dataset | sp.spmatrix,
        k: int = 10,
        *,
        eta: float = 1.0,
        click_relevant: float = 0.5,
        click_noise: float = 0.02,
        user_scale: np.ndarray | None = None,
    ) -> ClickModel:
        """Build from a held-out Dataset (or its user x item matrix).

        >>> cm = ClickModel.from_heldout(sp.csr_matrix(np.array([[1, 0, 0]])), k=3)
        >>> cm.probabilities(np.array([0]), np.array([[0, 1, -1]])).round(3).tolist()
        [[0.5, 0.01, 0.0]]
        """
        matrix = heldout.matrix if isinstance(heldout, Dataset) else sp.csr_matrix(heldout)
        if not 0 <= click_noise <= 1 or not 0 <= click_relevant <= 1:
            raise ValueError("click probabilities must lie in [0, 1]")
        exam = 1.0 / (np.arange(k) + 1.0) ** eta
        rel = sp.csr_matrix(matrix, dtype=bool)
        rel.eliminate_zeros()
        if user_scale is not None:
            user_scale = np.asarray(user_scale, dtype=float)
            if user_scale.shape != (rel.shape[0],) or np.any(user_scale < 0):
                raise ValueError("user_scale needs one non-negative value per user")
        return cls(rel, exam, click_relevant, click_noise, user_scale)

    def relevance(self, users: np.ndarray, lists: np.ndarray) -> np.ndarray:
        """Whether each shown item is in the user's held-out set, ``(n, k)`` bool."""
        users = np.asarray(users, dtype=np.int64)
        lists = np.asarray(lists, dtype=np.int64)
        if lists.ndim != 2 or lists.shape[0] != users.size:
            raise ValueError("lists must be (n_users, k) item indices")
        n_users, n_items = self.relevant.shape
        valid = (
            (lists >= 0) & (lists < n_items) & (users[:, None] >= 0) & (users[:, None] < n_users)
        )
        safe_items = np.where(valid, lists, 0)
        safe_users = np.where(valid, users[:, None], 0)
        rel = np.asarray(self.relevant[safe_users.ravel(), safe_items.ravel()]).reshape(lists.shape)
        return rel & valid

    def probabilities(self, users: np.ndarray, lists: np.ndarray) -> np.ndarray:
        """Click probability of each shown item, ``(n, k)``; padding (-1) never gets clicked."""
        lists = np.asarray(lists, dtype=np.int64)
        rel = self.relevance(users, lists)
        k = lists.shape[1]
        if k > self.examination.size:
            raise ValueError(f"lists of {k} items but examination covers {self.examination.size}")
        p = np.where(rel, self.click_relevant, self.click_noise) * self.examination[:k]
        if self.user_scale is not None:
            users = np.asarray(users, dtype=np.int64)
            known = (users >= 0) & (users < self.user_scale.size)
            scale = np.where(known, self.user_scale[np.where(known, users, 0)], 1.0)
            p = np.minimum(p * scale[:, None], 1.0)
        return np.where(lists >= 0, p, 0.0)

    def clicks(self, users: np.ndarray, lists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sampled clicks, a bool ``(n, k)`` array."""
        p = self.probabilities(users, lists)
        return rng.random(p.shape) < p

    def expected_ctr(self, users: np.ndarray, lists: np.ndarray) -> float:
        """Expected clicks per shown slot of a policy's lists (the on-policy truth for OPE)."""
        return float(self.probabilities(users, lists).mean())


def model_policy(model: object, histories: sp.csr_matrix, k: int = 10) -> Policy:
    """A policy from a fitted recstack model: its top k for each user's training history."""

    def policy(users: np.ndarray) -> np.ndarray:
        idx, _ = model.recommend(histories[users], k, users=users)  # type: ignore[attr-defined]
        return idx

    return policy


def assign(n_users: int, weights: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Random arm index per user with the given weights (the simulator's stand-in for hashing).

    >>> assign(4, {"a": 1.0, "b": 0.0}, np.random.default_rng(0)).tolist()
    [0, 0, 0, 0]
    """
    w = np.asarray(list(weights.values()), dtype=float)
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return rng.choice(w.size, size=n_users, p=w / w.sum())


def simulate_ab(
    policies: Mapping[str, Policy],
    users: np.ndarray,
    click_model: ClickModel,
    rng: np.random.Generator,
    *,
    weights: Mapping[str, float] | None = None,
    sessions: int = 1,
    pre: np.ndarray | None = None,
) -> dict[str, ArmSample]:
    """Run an A/B test offline: assign ``users`` to arms, show each user its arm's list
    ``sessions`` times, sample clicks, and aggregate per user into ``ArmSample`` rows.

    Conversion is "clicked at least once"; value counts clicks on held-out items (a useful click).
    ``pre`` (one value per user, e.g. training interactions) enables CUPED downstream.
    """
    weights = weights or {name: 1.0 for name in policies}
    users = np.asarray(users, dtype=np.int64)
    arm_of = assign(users.size, weights, rng)
    out: dict[str, ArmSample] = {}
    for i, name in enumerate(weights):
        members = users[arm_of == i]
        lists = policies[name](members) if members.size else np.zeros((0, 1), dtype=np.int64)
        shown = (lists >= 0).sum(axis=1).astype(float) * sessions
        clicks = np.zeros(members.size)
        useful = np.zeros(members.size)
        p = click_model.probabilities(members, lists)
        rel_mask = click_model.relevance(members, lists)
        for _ in range(sessions):
            c = rng.random(p.shape) < p
            clicks += c.sum(axis=1)
            useful += (c & rel_mask).sum(axis=1)
        out[name] = ArmSample(
            exposures=shown,
            clicks=clicks,
            conversions=(clicks > 0).astype(float),
            value=useful,
            pre=None if pre is None else np.asarray(pre, float)[arm_of == i],
        )
    return out


def clicks_for_ids(
    click_model: ClickModel,
    user_index: Mapping[str, int],
    item_index: Mapping[str, int],
    user_id: str,
    item_ids: Sequence[str],
    rng: np.random.Generator,
) -> np.ndarray:
    """Sampled clicks on a list a live server returned (external ids; unknown ids never click)."""
    u = user_index.get(user_id, -1)
    lst = np.array([[item_index.get(i, -1) for i in item_ids]], dtype=np.int64)
    if lst.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    return click_model.clicks(np.array([u]), lst, rng)[0]
