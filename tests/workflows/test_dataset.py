"""The store snapshot every workflow starts from."""

from __future__ import annotations

from recstack.workflows.dataset import load_dataset


def test_load_dataset_reads_the_store(settings):
    data = load_dataset(settings)
    assert (data.n_users, data.n_items, data.n_interactions) == (120, 60, 1200)
    assert data.item_meta is not None
