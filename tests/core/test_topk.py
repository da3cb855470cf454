"""Top-k selection: one tie rule (``tie_key`` order) on every path, against a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.topk import BATCH_BELOW, best, exclusion, tie_key, top_k


def reference(row: np.ndarray, k: int) -> np.ndarray:
    """The full ordering: descending value, then ``tie_key``; ``-inf`` as -1."""
    order = np.lexsort((tie_key(np.arange(len(row))), -row))[: min(k, len(row))]
    return np.where(np.isneginf(row[order]), -1, order)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("width", [7, 1_682, BATCH_BELOW + 1, 62_000])
def test_rows_of_ties_and_distinct_values_match_a_full_sort(seed: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [
        rng.standard_normal(width),  # distinct values
        rng.integers(0, 3, width).astype(np.float64),  # a few values, ties everywhere
        np.where(rng.random(width) < 0.995, 0.0, rng.random(width)),  # mostly zeros
        np.where(rng.random(width) < 0.99, -np.inf, rng.random(width)),  # mostly filtered
    ]
    scores = np.vstack(rows).astype(np.float32)
    for k in (1, 10, 100, width):
        idx, val = top_k(scores, k)
        for r, row in enumerate(scores):
            expected = reference(row, k)
            assert idx[r].tolist() == expected.tolist()
            assert (
                val[r].tolist() == row[np.lexsort((tie_key(np.arange(width)), -row))[:k]].tolist()
            )
        single, _ = top_k(scores[2:3], k)  # one row alone takes the same answer as in a batch
        assert single[0].tolist() == idx[2].tolist()


def test_nan_ranks_below_every_number_and_k_is_clipped() -> None:
    row = np.array([np.nan, 1.0, -np.inf, 0.5])
    assert best(row, 10).tolist() == [1, 3, 2, 0]
    assert best(np.zeros(5), 5).tolist() == [3, 4, 1, 2, 0]  # ties by key, not by index
    assert best(row, 0).tolist() == []
    idx, val = top_k(row[None, :].astype(np.float32), 0)
    assert idx.shape == (1, 0) and val.shape == (1, 0)


def test_a_threshold_sample_that_sees_no_winner_still_gives_the_exact_answer() -> None:
    # the strided sample reads only multiples of 15: it sees none of the 100 winners, and the
    # other 20 of the top 120 come from the zeros tied at its threshold, in tie_key order
    width = 62_000
    row = np.zeros(width, dtype=np.float32)
    winners = np.arange(1, 1_500, 15) + 1  # off the sample's stride
    row[winners] = np.linspace(2.0, 1.0, len(winners))
    assert best(row, 120).tolist() == reference(row, 120).tolist()


def test_ties_do_not_follow_the_catalogue_order() -> None:
    # a model with no signal for a user scores every item alike: its list must not be the
    # first items loaded (on MovieLens, roughly the most popular ones)
    idx, _ = top_k(np.zeros((1, 62_000), dtype=np.float32), 10)
    assert idx[0].tolist() == sorted(idx[0].tolist(), key=lambda i: int(tie_key(np.array([i]))[0]))
    assert idx[0].max() > 1_000


@pytest.mark.parametrize("shape", [(62_000,), (3, 1_682), (1, 7)])
def test_exclusion_drops_exactly_the_masked_out_items(shape):
    rng = np.random.default_rng(len(shape))
    scores = rng.normal(size=shape).astype(np.float32)
    scores.flat[::5] = -np.inf
    mask = rng.random(shape) < 0.4
    expected = scores.copy()
    expected[~mask] = -np.inf
    got = scores + exclusion(mask)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    if len(shape) == 2:  # one mask for every row
        row_mask = mask[0]
        np.testing.assert_array_equal(
            scores + exclusion(row_mask), np.where(row_mask, scores, -np.inf)
        )
