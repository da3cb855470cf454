"""Off-policy evaluation: propensities are right, and IPS / SNIPS / DR recover a target's CTR."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recstack.experiments.ope import (
    deterministic_target_prob,
    doubly_robust,
    epsilon_greedy,
    fit_position_based_model,
    ips,
    plackett_luce_marginals,
    plackett_luce_sample,
    snips,
)

N_ITEMS, K = 8, 3
EXAM = 1 / np.arange(1, K + 1)
ATTRACT = np.linspace(0.6, 0.05, N_ITEMS)  # item 0 is the most attractive


def _exact_pl_marginals(weights: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((weights.size, k))
    for perm in itertools.permutations(range(weights.size), k):
        p, left = 1.0, weights.sum()
        for item in perm:
            p *= weights[item] / left
            left -= weights[item]
        for j, item in enumerate(perm):
            out[item, j] += p
    return out


def test_plackett_luce_marginals_match_enumeration() -> None:
    scores = np.array([0.0, 1.0, 2.0, -1.0, 0.5])
    exact = _exact_pl_marginals(np.exp(scores), 3)
    est = plackett_luce_marginals(scores, 3, np.random.default_rng(0), n_samples=20_000)
    np.testing.assert_allclose(est, exact, atol=0.015)
    np.testing.assert_allclose(est[:, 0], exact[:, 0], atol=1e-12)


def test_epsilon_greedy_propensities_match_frequencies() -> None:
    rng = np.random.default_rng(1)
    ranked = np.arange(N_ITEMS)
    counts = np.zeros((N_ITEMS, K))
    logged = {}
    for _ in range(20_000):
        items, props = epsilon_greedy(ranked, K, 0.3, rng)
        counts[items, np.arange(K)] += 1
        logged.update({(int(i), j): p for j, (i, p) in enumerate(zip(items, props, strict=True))})
    freq = counts / 20_000
    for (item, j), p in logged.items():
        assert freq[item, j] == pytest.approx(p, abs=0.012)
    with pytest.raises(ValueError):
        epsilon_greedy(ranked, K, 1.5, rng)


def _log(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plackett-Luce logging over all items, clicks from the position-based model."""
    scores = np.log(ATTRACT)
    marg = plackett_luce_marginals(scores, K, rng, n_samples=50_000)
    # the same Gumbel-top-k draw as plackett_luce_sample, for many impressions at once
    items = np.argsort(-(scores + rng.gumbel(size=(n, N_ITEMS))), axis=1)[:, :K]
    props = marg[items, np.arange(K)]
    clicks = rng.random(items.shape) < ATTRACT[items] * EXAM
    return items, clicks, props


@pytest.mark.parametrize("target", [[0, 1, 2], [7, 3, 5]])
def test_estimators_recover_target_ctr(target: list[int]) -> None:
    rng = np.random.default_rng(2)
    items, clicks, props = _log(rng, 20_000)
    truth = float(np.mean(ATTRACT[target] * EXAM))
    target_lists = np.tile(target, (items.shape[0], 1))
    t_prob = deterministic_target_prob(items, target_lists)
    attr, exam = fit_position_based_model(items, clicks, N_ITEMS)
    q_logged = attr[items] * exam
    q_target = attr[target_lists] * exam
    for est in (
        ips(clicks, t_prob, props),
        snips(clicks, t_prob, props),
        doubly_robust(clicks, t_prob, props, q_logged, q_target),
    ):
        assert abs(est.value - truth) <= 4 * est.se + 1e-3, (est, truth)
    # DR with a useless click model is still unbiased, thanks to the propensities
    zeros = np.zeros_like(q_logged)
    dr0 = doubly_robust(clicks, t_prob, props, zeros, zeros)
    assert abs(dr0.value - truth) <= 4 * dr0.se + 1e-3


def test_position_based_model_recovers_parameters() -> None:
    rng = np.random.default_rng(3)
    items, clicks, _ = _log(rng, 20_000)
    attr, exam = fit_position_based_model(items, clicks, N_ITEMS, prior=0.0)
    np.testing.assert_allclose(exam, EXAM, atol=0.05)
    np.testing.assert_allclose(attr, ATTRACT, atol=0.04)


def test_sampled_list_comes_with_its_marginals() -> None:
    rng = np.random.default_rng(4)
    scores = np.log(ATTRACT)
    items, props = plackett_luce_sample(scores, K, rng, n_samples=20_000)
    exact = _exact_pl_marginals(ATTRACT, K)
    assert len(set(items.tolist())) == K
    np.testing.assert_allclose(props, exact[items, np.arange(K)], atol=0.015)


def test_bad_logs_are_refused() -> None:
    c = np.zeros((2, 2))
    with pytest.raises(ValueError, match="propensities"):
        ips(c, c, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        snips(c, c, np.ones((3, 2)))
