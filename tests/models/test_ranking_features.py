"""The pair features' co-occurrence overlap: one row (a served request) and many agree."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recstack.models.ranking.features import neighbour_overlap


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
