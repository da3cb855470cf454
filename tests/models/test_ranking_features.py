"""The pair features: co-occurrence overlap (one row, a served request, and many agree) and
attribute keys as codes and history shares."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.models.ranking.anchor import monotone_constraints
from recstack.models.ranking.attributes import MAX_KEYS, attribute_codes, paired_codes
from recstack.models.ranking.features import (
    SHARE_PRIOR,
    code_widths,
    neighbour_overlap,
    value_shares,
)
from recstack.testing.data import planted_frame


def test_one_row_and_a_batch_give_the_same_overlap():
    rng = np.random.default_rng(3)
    n = 300
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.05)
    neighbours = sp.csr_matrix(dense.astype(np.float32))
    history = np.sort(rng.choice(n, 25, replace=False))
    items = rng.choice(n, 80, replace=False)
    # the same row twice, as a batch of two rows: the key path
    rows2 = np.r_[np.zeros(80, np.int64), np.ones(80, np.int64)]
    keys2 = np.sort(np.r_[history, n + history])
    [(batch_sum, batch_max)] = neighbour_overlap(neighbours, np.r_[items, items], rows2, [keys2], n)
    [(one_sum, one_max)] = neighbour_overlap(
        neighbours, items, np.zeros(80, np.int64), [history], n
    )
    np.testing.assert_allclose(one_sum, batch_sum[:80], rtol=1e-6)
    np.testing.assert_allclose(one_sum, batch_sum[80:], rtol=1e-6)
    np.testing.assert_allclose(one_max, batch_max[:80], rtol=1e-6)
    want = dense[np.ix_(items, history)]
    np.testing.assert_allclose(one_sum, want.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(one_max, want.max(axis=1), rtol=1e-5)


def _with_attributes(attributes_of) -> Dataset:
    inter, items = planted_frame(n_users=30, n_items=12, per_user=5)
    items["attributes"] = [attributes_of(i) for i in range(len(items))]
    return Dataset.from_frame(inter, items=items)


def test_attribute_codes_keep_repeated_single_valued_string_keys():
    dataset = _with_attributes(
        lambda i: {
            "topic": f"t{i % 3}",
            "level": "hi" if i % 2 else "lo",
            "slug": f"s{i}",  # a value per item: says nothing
            "mixed": "a" if i % 2 else 3,  # not always a string
            "one": "x",  # one value for every item
            "genres": [f"g{i % 4}"],  # lists are tokens, not codes
            "difficulty": i % 3,
        }
    )
    codes, keys = attribute_codes(dataset)
    assert keys == ["level", "topic"]
    assert codes.shape == (12, 2)
    topic = [a["topic"] for a in dataset.item_meta["attributes"]]
    for i in range(12):
        for j in range(12):
            assert (codes[i, 1] == codes[j, 1]) == (topic[i] == topic[j])


def test_attribute_codes_mark_missing_values_and_cap_the_keys():
    dataset = _with_attributes(lambda i: {k: f"{k}{i % 2}" for k in "abcde"} if i else {"a": "a0"})
    codes, keys = attribute_codes(dataset)
    assert keys == ["a", "b", "c", "d"]  # "a" is present on most items; then by name
    assert len(keys) == MAX_KEYS
    first = dataset.items.index("i0")
    assert codes[first, 0] >= 0 and (codes[first, 1:] == -1).all()


def test_paired_codes_mark_each_joint_value_once_and_skip_pairs_that_add_nothing():
    topic = np.arange(24) % 4
    level = (np.arange(24) // 4) % 3
    series = topic * 2 + np.arange(24) // 12  # implies the topic: (topic, series) is series
    codes = np.column_stack([topic, level, series]).astype(np.int32)
    codes[5, 1] = -1
    out = paired_codes(codes)
    # (topic, level): 12 shelves of two items; (level, series): 24 values, one per item
    assert out.shape == (24, 4)
    joint = out[:, 3]
    assert joint[5] == -1
    for i in range(24):
        for j in range(24):
            if i != 5 and j != 5:
                same = topic[i] == topic[j] and codes[i, 1] == codes[j, 1]
                assert (joint[i] == joint[j]) == same
    assert paired_codes(np.zeros((5, 0), np.int32)).shape == (5, 0)


def test_taste_shares_are_constrained_to_help_and_other_features_are_free():
    names = ["als_rank", "als_score", "key0_history_share", "key3_item_share", "affinity"]
    assert monotone_constraints(names, ["als"]) == [-1, 1, 1, 1, 0]


def test_history_shares_count_the_candidates_value_in_each_row():
    codes = np.array([[0, 0], [0, 1], [1, 1], [1, -1]])
    # row 0 holds items 0, 1, 2; row 1 holds item 3
    hist, row_of = np.array([0, 1, 2, 3]), np.array([0, 0, 0, 1])
    rows, items = np.array([0, 0, 1]), np.array([3, 2, 0])
    args = (codes, hist, row_of, np.array([3.0, 1.0]), rows, items)
    raw = value_shares(*args, prior=0.0)
    np.testing.assert_allclose(raw[0], [1 / 3, np.nan])  # item 3: key 1 absent
    np.testing.assert_allclose(raw[1], [1 / 3, 2 / 3])
    np.testing.assert_allclose(raw[2], [0.0, 0.0])  # row 1 has key 0 = 1 only
    # one pseudo-item spread over each key's two values: (same + 1/2) / (history + 1)
    smoothed = value_shares(*args)
    np.testing.assert_allclose(smoothed[0], [1.5 / 4, np.nan])
    np.testing.assert_allclose(smoothed[1], [1.5 / 4, 2.5 / 4])
    np.testing.assert_allclose(smoothed[2], [0.5 / 2, 0.5 / 2])


def test_history_shares_of_one_row_equal_those_of_a_batch():
    rng = np.random.default_rng(5)
    codes = rng.integers(-1, 6, size=(40, 3))
    history = np.sort(rng.choice(40, 12, replace=False))
    items = rng.choice(40, 25, replace=False)
    one = value_shares(
        codes, history, np.zeros(12, np.int64), np.array([12.0]), np.zeros(25, np.int64), items
    )
    # the same row second in a batch of two: the sorted-keys path
    batch = value_shares(
        codes,
        np.r_[history[:5], history],
        np.r_[np.zeros(5, np.int64), np.ones(12, np.int64)],
        np.array([5.0, 12.0]),
        np.ones(25, np.int64),
        items,
    )
    np.testing.assert_array_equal(one, batch)
    same = (codes[history][None, :, :] == codes[items][:, None, :]).sum(axis=1)
    want = (same + SHARE_PRIOR / code_widths(codes)) / (12 + SHARE_PRIOR)
    np.testing.assert_allclose(one, np.where(codes[items] >= 0, want, np.nan), rtol=1e-6)
