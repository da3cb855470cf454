"""The MLflow registry against a real local SQLite backend: log, list, promote, rollback, load."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.errors import ConfigError, NotFoundError
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry, VersionInfo
from recstack.settings import Settings
from recstack.testing.data import planted_dataset


@pytest.fixture(scope="module")
def dataset():
    return planted_dataset(n_users=60, n_items=40, per_user=8)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> ModelRegistry:
    """One SQLite-backed registry for the module (creating MLflow's tables takes seconds)."""
    home = tmp_path_factory.mktemp("registry") / "home"
    return ModelRegistry(Settings(home=home, model_name="recs"))


@pytest.fixture(scope="module")
def three_versions(registry, dataset, tmp_path_factory) -> list[VersionInfo]:
    plot = tmp_path_factory.mktemp("plots") / "chart.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    versions = []
    for half_life in (None, 30.0, 5.0):
        model = create_model("popularity", half_life_days=half_life).fit(dataset)
        versions.append(
            registry.log_model(
                model,
                metrics={"ndcg_at_10": 0.1 + (half_life or 0) / 100},
                dataset_stats=dataset.stats(),
                plots=[plot],
                tags={"trigger": "test"},
            )
        )
    return versions


def test_log_model_registers_numbered_versions_with_metadata(registry, three_versions, dataset):
    assert [v.version for v in three_versions] == [1, 2, 3]
    first = three_versions[0]
    assert first.name == "recs"
    assert first.model == "popularity"
    assert first.metrics == {"ndcg_at_10": pytest.approx(0.1)}
    assert first.params["half_life_days"] == "null"
    assert first.aliases == []
    run = registry.client.get_run(first.run_id)
    assert run.data.tags["recstack.data_fingerprint"] == dataset.fingerprint
    assert run.data.tags["recstack.data.users"] == str(dataset.n_users)
    assert "numpy" in run.data.tags["recstack.library_versions"]
    assert run.data.tags["trigger"] == "test"
    artifacts = {a.path for a in registry.client.list_artifacts(first.run_id)}
    assert artifacts == {"model", "plots"}
    model_files = {a.path for a in registry.client.list_artifacts(first.run_id, "model")}
    assert "model/model.json" in model_files


def test_list_versions_filters_by_name(registry, three_versions):
    assert [v.version for v in registry.list_versions("recs")] == [1, 2, 3]
    assert [(v.name, v.version) for v in registry.list_versions()][:3] == [
        ("recs", 1),
        ("recs", 2),
        ("recs", 3),
    ]
    with pytest.raises(NotFoundError, match="no registered model named 'nope'"):
        registry.list_versions("nope")


def test_promote_and_rollback_round_trip(registry, three_versions):
    assert registry.promote("recs", 1).aliases == ["champion"]
    assert registry.promote("recs", 2).aliases == ["champion"]
    assert registry.resolve("recs", "champion").version == 2
    registry.promote("recs", 3)
    assert registry.get_version("recs", 2).aliases == []
    assert registry.rollback("recs").version == 2
    assert registry.resolve("recs").version == 2
    assert registry.rollback("recs").version == 1
    assert [v.aliases for v in registry.list_versions("recs")] == [["champion"], [], []]
    with pytest.raises(NotFoundError, match="no previous version to roll back to"):
        registry.rollback("recs")
    # promoting the version already holding the alias changes nothing
    registry.promote("recs", 1)
    with pytest.raises(NotFoundError, match="no previous version"):
        registry.rollback("recs")


def test_aliases_are_independent(registry, three_versions):
    registry.promote("recs", 3, alias="challenger")
    registry.promote("recs", 1, alias="champion")
    assert registry.resolve("recs", "challenger").version == 3
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        registry.rollback("recs", alias="staging")
    with pytest.raises(NotFoundError, match="no version with alias 'staging'"):
        registry.resolve("recs", "staging")


def test_bad_promotions_are_clear_errors(registry, three_versions):
    with pytest.raises(NotFoundError, match="has no version 9"):
        registry.promote("recs", 9)
    with pytest.raises(NotFoundError, match="no registered model named 'other'"):
        registry.promote("other", 1)
    with pytest.raises(ConfigError, match="reserved"):
        registry.promote("recs", 1, alias="latest")
    with pytest.raises(ConfigError, match="invalid alias"):
        registry.promote("recs", 1, alias="has space")


def test_load_by_alias_and_version_scores_like_the_original(registry, three_versions, dataset):
    original = create_model("popularity", half_life_days=30.0).fit(dataset)
    registry.promote("recs", 2, alias="candidate")
    loaded = registry.load("recs", alias="candidate")
    history = dataset.matrix[:5]
    np.testing.assert_allclose(loaded.score(history), original.score(history), rtol=1e-6)
    assert loaded.params["half_life_days"] == 30.0
    assert loaded.meta.metrics == {"ndcg_at_10": pytest.approx(0.4)}
    cached = registry.settings.artifacts_dir / "recs" / "2"
    assert (cached / "model.json").exists()
    assert registry.load("recs", version=1).params["half_life_days"] is None


def test_load_downloads_into_an_empty_cache(tmp_path, registry, three_versions):
    """A second process with another home (a server replica) fetches artifacts from MLflow."""
    other = ModelRegistry(
        Settings(home=tmp_path / "replica", mlflow_tracking_uri=registry.tracking_uri)
    )
    model, info = other.load_with_info("recs", version=3)
    assert info.version == 3
    assert model.params["half_life_days"] == 5.0
    assert (tmp_path / "replica" / "artifacts" / "recs" / "3" / "model.json").exists()
