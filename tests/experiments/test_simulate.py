"""The click simulator: position-based clicks on held-out items, offline A/B runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.experiments.simulate import ClickModel, clicks_for_ids, simulate_ab


def _heldout(n_users: int = 400, n_items: int = 60) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n_users), 5)
    cols = np.concatenate([rng.choice(n_items, 5, replace=False) for _ in range(n_users)])
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_users, n_items))


def test_probabilities_are_position_based() -> None:
    cm = ClickModel.from_heldout(_heldout(), k=3, eta=1.0, click_relevant=0.6, click_noise=0.03)
    rel = cm.relevant[0].indices
    other = np.setdiff1d(np.arange(60), rel)
    p = cm.probabilities(
        np.array([0, 0]), np.array([[rel[0], rel[1], other[0]], [other[0], -1, rel[0]]])
    )
    np.testing.assert_allclose(p, [[0.6, 0.3, 0.01], [0.03, 0.0, 0.2]])
    with pytest.raises(ValueError, match="examination covers"):
        cm.probabilities(np.array([0]), np.zeros((1, 4), dtype=int))
    with pytest.raises(ValueError, match="click probabilities"):
        ClickModel.from_heldout(_heldout(), click_noise=2.0)


def test_user_scale_multiplies_click_probabilities() -> None:
    held = sp.csr_matrix(np.array([[1, 0], [1, 0]]))
    cm = ClickModel.from_heldout(
        held, k=2, click_relevant=0.5, click_noise=0.1, user_scale=np.array([0.0, 3.0])
    )
    np.testing.assert_allclose(
        cm.probabilities(np.array([0, 1]), np.array([[0, 1], [0, 1]])), [[0.0, 0.0], [1.0, 0.15]]
    )
    with pytest.raises(ValueError, match="user_scale"):
        ClickModel.from_heldout(held, user_scale=np.ones(3))


def test_sampled_clicks_match_expectation() -> None:
    cm = ClickModel.from_heldout(_heldout(), k=10)
    rng = np.random.default_rng(1)
    users = np.arange(400)
    lists = np.stack([rng.permutation(60)[:10] for _ in users])
    clicks = np.mean([cm.clicks(users, lists, rng).mean() for _ in range(50)])
    assert clicks == pytest.approx(cm.expected_ctr(users, lists), rel=0.05)


def test_oracle_policy_beats_random_in_simulated_ab() -> None:
    held = _heldout()
    cm = ClickModel.from_heldout(held, k=10)

    def oracle(users: np.ndarray) -> np.ndarray:
        out = np.full((users.size, 10), -1)
        for row, u in enumerate(users):
            out[row, :5] = held[u].indices
        return out

    rng = np.random.default_rng(2)

    def random_policy(users: np.ndarray) -> np.ndarray:
        return np.stack([rng.permutation(60)[:10] for _ in users])

    samples = simulate_ab(
        {"random": random_policy, "oracle": oracle}, np.arange(400), cm, rng, sessions=2
    )
    assert samples["random"].users + samples["oracle"].users == 400
    ctr = {k: s.clicks.sum() / s.exposures.sum() for k, s in samples.items()}
    assert ctr["oracle"] > 3 * ctr["random"]
    assert np.all(samples["oracle"].exposures == 10)  # 5 shown items x 2 sessions
    assert np.all(samples["oracle"].value <= samples["oracle"].clicks)


def test_clicks_for_external_ids() -> None:
    cm = ClickModel.from_heldout(
        sp.csr_matrix(np.array([[1, 0]])), k=2, click_relevant=1.0, click_noise=0.0
    )
    rng = np.random.default_rng(0)
    clicks = clicks_for_ids(cm, {"u": 0}, {"i0": 0, "i1": 1}, "u", ["i0", "i1"], rng)
    assert clicks.tolist() == [True, False]
    assert clicks_for_ids(cm, {"u": 0}, {}, "stranger", ["zz"], rng).tolist() == [False]
