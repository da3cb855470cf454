"""Offline comparison of models on the store's data."""

from __future__ import annotations

from recstack.workflows.evaluate import evaluate_from_store


def test_evaluate_from_store(settings):
    result = evaluate_from_store(settings, ["popularity", "ease"], k=5, ks=(5, 10))
    assert [r.name for r in result.models] == ["popularity", "ease"]
    assert result.users_evaluated == 120
    assert result.dataset["interactions"] == 1200


def test_evaluate_from_store_on_both_backends(store_settings, fill_store):
    fill_store(store_settings, n_users=40, n_items=30, per_user=8)
    result = evaluate_from_store(store_settings, ["popularity"], k=5, ks=(5,))
    assert result.users_evaluated == 40
