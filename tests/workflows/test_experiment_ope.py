"""The target lists of off-policy evaluation: ranked as the server would have ranked them."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.registry import ModelRegistry
from recstack.store import Store
from recstack.workflows.dataset import load_dataset
from recstack.workflows.experiment_ope import target_lists
from recstack.workflows.train import train_and_register


def _model_list(model, dataset, user: str, exclude: list[str], learned: bool) -> list[str]:
    """``model``'s top 5 for ``user`` from their stored history plus ``exclude``, with the
    learned vector or folded in."""
    row = dataset.users.indices([user])[0]
    items = dataset.matrix[row].indices.tolist() + dataset.items.indices(exclude).tolist()
    cols = model.items.indices(dataset.items.externals(items))
    h = sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), int), cols)), (1, model.n_items))
    users = model.users.indices([user]) if learned else np.array([-1])
    idx, _ = model.recommend(h, 5, users=users)
    return model.items.externals(idx[0][idx[0] >= 0])


def test_users_with_events_newer_than_the_model_are_folded_in(settings):
    train_and_register(settings, "als", {"factors": 8, "iterations": 5}, promote="challenger")
    model = ModelRegistry(settings).load(settings.model_name, alias="challenger")
    before = load_dataset(settings)
    user = "u3"
    learned = _model_list(model, before, user, [], learned=True)
    # the user now views eight items the model ranks last for them: a new taste
    scores = model.user_vectors(sp.csr_matrix((1, model.n_items)), model.users.indices([user]))
    last = model.items.externals(np.argsort(model.score_vectors(scores)[0])[:8])
    now = int(time.time()) + 1
    store = Store.from_settings(settings)
    store.add_events(
        pd.DataFrame(
            {"event_id": [f"ope-{n}" for n in range(8)], "user_id": user, "item_id": last,
             "event_type": "view", "timestamp": now}
        )
    )  # fmt: skip
    try:
        old, new = target_lists(
            store, settings, "challenger", [user, user], 5, served_at=np.array([1e9 * 1.7, now + 2])
        )
    finally:
        store.close()
    # served before the new events: the history as stored, the learned vector
    assert old.tolist() == learned
    # served after them: they are history (left out of the list) and the user is folded in
    folded = _model_list(model, before, user, last, learned=False)
    assert new.tolist() == folded
    assert not set(last) & set(new.tolist())
    assert folded != _model_list(model, before, user, last, learned=True)
