"""Training end to end: store snapshot -> evaluate -> fit -> MLflow -> alias."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.errors import ConfigError, DataError
from recstack.registry import ModelRegistry
from recstack.settings import Settings
from recstack.workflows.dataset import load_dataset
from recstack.workflows.train import train_and_register


def test_train_register_promote_and_rollback(settings):
    first = train_and_register(settings, "itemknn", {"k_neighbors": 20}, promote="champion")
    assert (first.name, first.version, first.model) == ("courses", 1, "itemknn")
    assert first.aliases == ["champion"]
    assert 0.0 < first.metrics["ndcg_at_10"] <= 1.0
    assert first.metrics["train_seconds"] >= 0.0
    assert first.params["k_neighbors"] == "20"

    registry = ModelRegistry(settings)
    run = registry.client.get_run(first.run_id)
    assert run.data.tags["recstack.data_fingerprint"] == load_dataset(settings).fingerprint
    assert run.data.tags["recstack.eval.protocol"] == "stratified"
    plots = {a.path for a in registry.client.list_artifacts(first.run_id, "plots")}
    assert plots == {
        "plots/metrics_by_model.png",
        "plots/metrics_vs_k.png",
        "plots/popularity_bias.png",
    }

    second = train_and_register(settings, "popularity", evaluate=False, promote="champion")
    assert second.version == 2
    assert "ndcg_at_10" not in second.metrics
    assert registry.resolve("courses", "champion").version == 2
    assert registry.get_version("courses", 1).aliases == []
    assert registry.rollback("courses").version == 1


def test_registered_model_was_refit_on_all_data(settings):
    registry = ModelRegistry(settings)
    model = registry.load("courses", version=1)
    data = load_dataset(settings)
    assert model.meta.n_interactions == data.n_interactions
    assert model.meta.metrics["ndcg_at_10"] > 0
    idx, _ = model.recommend(data.matrix[:3], 5)
    assert idx.shape == (3, 5)
    assert not np.isin(idx[0], data.matrix[0].indices).any()


def test_bad_model_is_rejected_before_anything_is_registered(settings):
    registry = ModelRegistry(settings)
    before = len(registry.list_versions())
    with pytest.raises(ConfigError, match="unknown parameter"):
        train_and_register(settings, "ease", {"bogus": 1})
    with pytest.raises(ConfigError, match="unknown model"):
        train_and_register(settings, "nope")
    assert len(registry.list_versions()) == before


def test_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="ingest data first"):
        train_and_register(Settings(home=tmp_path / "empty"), "popularity")
