"""Dataset, IdMap and EventWeighting: the shapes every model and store path relies on."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import recstack.data.idmap
import recstack.data.weights
from recstack.data import Dataset, IdMap
from recstack.data.weights import EventWeighting
from recstack.testing.data import planted_dataset, planted_frame


@pytest.mark.parametrize("module", [recstack.data.idmap, recstack.data.weights])
def test_doctests(module) -> None:
    assert doctest.testmod(module).failed == 0


def test_idmap_extend_keeps_order_and_rejects_duplicates() -> None:
    m = IdMap(["a", "b"]).extend(["c", "a", "c", "d"])
    assert m.to_list() == ["a", "b", "c", "d"]
    assert m.indices(["d", "x"]).tolist() == [3, -1]
    with pytest.raises(ValueError, match="duplicate"):
        IdMap(["a", "a"])


def test_idmap_save_load(tmp_path) -> None:
    m = IdMap(["x", 2, "é"])
    m.save(tmp_path / "ids.json")
    assert IdMap.load(tmp_path / "ids.json") == m


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u1"],
            "item_id": ["a", "b", "a", "a"],
            "event_type": ["view", "rate", "complete", "view"],
            "value": [np.nan, 4.0, np.nan, np.nan],
            "timestamp": [30, 10, 20, 5],
        }
    )


def test_from_frame_weights_sort_and_matrix() -> None:
    d = Dataset.from_frame(frame())
    assert d.users.to_list() == ["u1", "u2"]
    assert d.items.to_list() == ["a", "b"]
    # sorted by user then time: u1@5 (a), u1@10 (b), u1@30 (a), u2@20 (a)
    assert d.timestamp.tolist() == [5, 10, 30, 20]
    # view=1 twice on (u1,a) summed; rate 4 * weight 1; complete weighs 4
    assert d.matrix.toarray().tolist() == [[2.0, 4.0], [4.0, 0.0]]
    assert d.item_popularity.tolist() == [2, 1]


def test_min_value_drops_low_ratings() -> None:
    d = Dataset.from_frame(frame(), weighting=EventWeighting(min_value=4.5))
    assert d.n_interactions == 3  # the rating of 4 is dropped, and with it item b
    assert "b" not in d.items
    assert d.matrix.toarray().tolist() == [[2.0], [4.0]]


def test_fingerprint_changes_with_data_and_is_stable() -> None:
    a, b = Dataset.from_frame(frame()), Dataset.from_frame(frame())
    assert a.fingerprint == b.fingerprint
    f = frame()
    f.loc[0, "timestamp"] = 31
    assert Dataset.from_frame(f).fingerprint != a.fingerprint


def test_item_meta_aligned_and_catalogue_items_kept() -> None:
    inter, items = planted_frame(n_users=20, n_items=30, per_user=5)
    extra = pd.DataFrame(
        [
            {
                "item_id": "new",
                "title": "New",
                "text": None,
                "attributes": {"genres": ["x"]},
                "active": False,
            }
        ]
    )
    d = Dataset.from_frame(inter, items=pd.concat([items, extra], ignore_index=True))
    j = d.items.index("new")
    assert j >= 0 and d.item_meta.loc[j, "title"] == "New"
    assert not d.item_meta.loc[j, "active"]
    assert d.item_attribute("genres")[j] == ["x"]
    assert d.matrix[:, j].nnz == 0


def test_subset_and_save_load_round_trip(tmp_path) -> None:
    d = planted_dataset(n_users=30, n_items=20, per_user=4)
    half = d.subset(np.arange(d.n_interactions) % 2 == 0)
    assert half.users == d.users and half.n_interactions == (d.n_interactions + 1) // 2
    loaded = Dataset.load(d.save(tmp_path / "ds"), mmap=True)
    assert loaded.fingerprint == d.fingerprint
    assert (loaded.matrix != d.matrix).nnz == 0
    assert loaded.item_meta["attributes"][0] == d.item_meta["attributes"][0]


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match="item_idx"):
        Dataset(IdMap(["u"]), IdMap(["i"]), np.zeros(2), np.zeros(1), np.zeros(2), np.zeros(2))
