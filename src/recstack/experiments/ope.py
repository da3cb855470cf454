"""Off-policy evaluation: a new ranking policy's CTR from logs of an exploring policy.

Logs hold, per served list (impression) ``i`` and position ``j``: the item shown, whether it was
clicked and the logging policy's *marginal* propensity ``pi0(item at j | user)``. Under the
position-based click model (a click at j depends on the item and on j only) the item-position
estimators below are unbiased for the target policy's expected CTR per slot (Li et al., "Offline
evaluation of ranking policies with click models", KDD 2018; Open Bandit Pipeline's IIPS):

* IPS  = mean_ij  c_ij w_ij,               w_ij = pi_e(item_ij at j) / pi0(item_ij at j)
* SNIPS = mean_j (sum_i c_ij w_ij / sum_i w_ij)     (self-normalised per position)
* DR   = mean_ij (qhat_e,ij + w_ij (c_ij - qhat_ij))  with a click model qhat

A target policy can only be evaluated on items the logging policy could show at that position:
explore over the candidates a re-ranker would reorder (``plackett_luce_sample`` or
``epsilon_greedy`` over the top-N).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _check(*arrays: np.ndarray) -> None:
    shape = np.shape(arrays[0])
    for a in arrays[1:]:
        if np.shape(a) != shape:
            raise ValueError(f"OPE arrays must share one (impressions, positions) shape: {shape}")


def _weights(target_prob: np.ndarray, logging_prob: np.ndarray) -> np.ndarray:
    logging_prob = np.asarray(logging_prob, float)
    if np.any(logging_prob <= 0) or np.any(logging_prob > 1):
        raise ValueError("logging propensities must lie in (0, 1]")
    return np.asarray(target_prob, float) / logging_prob


@dataclass(frozen=True)
class Estimate:
    """A CTR-per-slot estimate with its standard error over impressions."""

    value: float
    se: float


def ips(clicks: np.ndarray, target_prob: np.ndarray, logging_prob: np.ndarray) -> Estimate:
    """Inverse propensity scoring.

    >>> c = np.array([[1, 0], [0, 1]]); t = np.array([[1, 0], [1, 1]])
    >>> l = np.array([[0.5, 0.5], [0.25, 0.5]])
    >>> ips(c, t, l).value  # cells 2, 0, 0, 2 -> 1.0
    1.0
    """
    _check(clicks, target_prob, logging_prob)
    per_imp = (np.asarray(clicks, float) * _weights(target_prob, logging_prob)).mean(axis=1)
    return Estimate(float(per_imp.mean()), float(per_imp.std(ddof=1) / np.sqrt(per_imp.size)))


def snips(clicks: np.ndarray, target_prob: np.ndarray, logging_prob: np.ndarray) -> Estimate:
    """Self-normalised IPS, per position (the expected weight of each position is 1).

    Position 0: 2 / (2 + 4) = 1/3; position 1: 2 / 2 = 1; mean 0.667.

    >>> c = np.array([[1, 0], [0, 1]]); t = np.array([[1, 0], [1, 1]])
    >>> round(snips(c, t, np.array([[0.5, 0.5], [0.25, 0.5]])).value, 3)
    0.667
    """
    _check(clicks, target_prob, logging_prob)
    w = _weights(target_prob, logging_prob)
    c = np.asarray(clicks, float)
    total = w.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    per_pos = np.where(total > 0, (c * w).sum(axis=0) / safe, 0.0)
    n = c.shape[0]
    # linearised influence of each impression, for a delta-method standard error
    infl = (w * (c - per_pos) / np.where(total > 0, total / n, 1.0)).mean(axis=1)
    return Estimate(float(per_pos.mean()), float(infl.std(ddof=1) / np.sqrt(n)))


def doubly_robust(
    clicks: np.ndarray,
    target_prob: np.ndarray,
    logging_prob: np.ndarray,
    q_logged: np.ndarray,
    q_target: np.ndarray,
) -> Estimate:
    """Doubly robust: a click model's prediction for the target list, corrected by IPS on its
    residuals; unbiased if either the propensities or the click model are right.

    ``q_logged[i, j]`` predicts a click on the logged item at j; ``q_target[i, j]`` the expected
    click at j under the target policy. With every prediction 0.5 the cells are
    0.5 + 2 * 0.5, 0.5 + 0, 0.5 - 4 * 0.5, 0.5 + 2 * 0.5 -> mean 0.5.

    >>> c = np.array([[1, 0], [0, 1]]); t = np.array([[1, 0], [1, 1]])
    >>> l = np.array([[0.5, 0.5], [0.25, 0.5]]); q = np.full((2, 2), 0.5)
    >>> doubly_robust(c, t, l, q, q).value
    0.5
    """
    _check(clicks, target_prob, logging_prob, q_logged, q_target)
    w = _weights(target_prob, logging_prob)
    cells = np.asarray(q_target, float) + w * (np.asarray(clicks, float) - q_logged)
    per_imp = cells.mean(axis=1)
    return Estimate(float(per_imp.mean()), float(per_imp.std(ddof=1) / np.sqrt(per_imp.size)))


def deterministic_target_prob(logged_items: np.ndarray, target_lists: np.ndarray) -> np.ndarray:
    """pi_e(logged item at j) for a deterministic target: 1 where it puts the same item at j.

    >>> deterministic_target_prob(np.array([[3, 1]]), np.array([[3, 2]])).tolist()
    [[1.0, 0.0]]
    """
    return (np.asarray(logged_items) == np.asarray(target_lists)).astype(float)


def epsilon_greedy(
    ranked: Sequence[int] | np.ndarray, k: int, epsilon: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Show the top k of ``ranked`` (N candidates, best first), or with probability ``epsilon``
    k of them uniformly at random in random order; returns (items, marginal propensities).

    P(item a at j) = (1 - eps) [ranked[j] == a] + eps / N, exactly.

    >>> items, p = epsilon_greedy([7, 8, 9, 10], 2, 0.0, np.random.default_rng(0))
    >>> items.tolist(), p.tolist()
    ([7, 8], [1.0, 1.0])
    >>> epsilon_greedy([7, 8, 9, 10], 2, 1.0, np.random.default_rng(1))[1].tolist()
    [0.25, 0.25]
    """
    ranked = np.asarray(ranked)
    n = ranked.size
    if not 0 <= epsilon <= 1 or k > n:
        raise ValueError("need 0 <= epsilon <= 1 and k <= number of candidates")
    items = ranked[rng.permutation(n)[:k]] if rng.random() < epsilon else ranked[:k]
    props = epsilon / n + (1 - epsilon) * (items == ranked[:k])
    return items, props.astype(float)


def plackett_luce_marginals(
    scores: np.ndarray,
    k: int,
    rng: np.random.Generator,
    temperature: float = 1.0,
    n_samples: int = 2000,
) -> np.ndarray:
    """(N, k) marginal probabilities of each candidate at each position under Plackett-Luce
    sampling with weights exp(score / temperature): exact softmax at position 0, Gumbel-top-k
    Monte Carlo estimates below it (exact marginals cost exponential time).

    >>> m = plackett_luce_marginals(np.log(np.array([1.0, 3.0])), 2, np.random.default_rng(0))
    >>> m[:, 0].round(3).tolist(), m.sum(axis=0).round(3).tolist()
    ([0.25, 0.75], [1.0, 1.0])
    """
    logits = np.asarray(scores, float) / temperature
    n = logits.size
    keys = logits + rng.gumbel(size=(n_samples, n))
    top = (
        np.argpartition(-keys, k - 1, axis=1)[:, :k]
        if k < n
        else np.tile(np.arange(n), (n_samples, 1))
    )
    order = np.take_along_axis(keys, top, axis=1).argsort(axis=1)[:, ::-1]
    ranks = np.take_along_axis(top, order, axis=1)
    counts = np.zeros((n, k))
    np.add.at(counts, (ranks, np.broadcast_to(np.arange(k), ranks.shape)), 1.0)
    marg = counts / n_samples
    soft = np.exp(logits - logits.max())
    marg[:, 0] = soft / soft.sum()
    return marg


def plackett_luce_sample(
    scores: np.ndarray,
    k: int,
    rng: np.random.Generator,
    temperature: float = 1.0,
    n_samples: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample a list of k candidate indices by Plackett-Luce and return (items, marginal
    propensities of each shown item at its position), for logging while exploring.

    >>> items, p = plackett_luce_sample(np.array([0.0, 50.0, -50.0]), 2, np.random.default_rng(0))
    >>> items.tolist(), p.round(2).tolist()
    ([1, 0], [1.0, 1.0])
    """
    logits = np.asarray(scores, float) / temperature
    keys = logits + rng.gumbel(size=logits.size)
    items = np.argsort(-keys, kind="stable")[:k]
    marg = plackett_luce_marginals(scores, k, rng, temperature, n_samples)
    # the drawn list is itself one sample: count it so no shown item gets propensity 0
    props = (marg[items, np.arange(k)] * n_samples + 1) / (n_samples + 1)
    props[0] = marg[items[0], 0]
    return items, props


def fit_position_based_model(
    items: np.ndarray, clicks: np.ndarray, n_items: int, iters: int = 30, prior: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Fit P(click) = attractiveness[item] * examination[position] to logged lists by
    alternating ratio updates (the position-based model), as the click model of DR.

    Returns (attractiveness per item, examination per position with examination[0] = 1).
    ``prior`` adds that many pseudo-exposures at the mean CTR so rare items are shrunk.

    >>> items = np.array([[0, 1], [1, 0]]); clicks = np.array([[1, 0], [1, 0]])
    >>> a, e = fit_position_based_model(items, clicks, 2, prior=0.0)
    >>> a.round(2).tolist(), e.round(2).tolist()
    ([1.0, 1.0], [1.0, 0.0])
    """
    items = np.asarray(items)
    c = np.asarray(clicks, float)
    k = items.shape[1]
    exam = np.ones(k)
    base = c.mean() / max(exam.mean(), 1e-12)
    attr = np.full(n_items, base)
    clicks_per_item = np.bincount(items.ravel(), weights=c.ravel(), minlength=n_items)
    for _ in range(iters):
        exposure = np.bincount(
            items.ravel(), weights=np.broadcast_to(exam, items.shape).ravel(), minlength=n_items
        )
        attr = (clicks_per_item + prior * base) / np.maximum(exposure + prior, 1e-12)
        attr = np.clip(attr, 0.0, 1.0)
        exam = c.sum(axis=0) / np.maximum(attr[items].sum(axis=0), 1e-12)
        exam = exam / exam[0] if exam[0] > 0 else exam
    return attr, exam
