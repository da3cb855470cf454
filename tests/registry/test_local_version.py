"""Aliases read straight from the local SQLite registry agree with MLflow's own answers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recstack.errors import NotFoundError
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.settings import Settings
from recstack.testing.data import planted_dataset


@pytest.fixture(scope="module")
def dataset():
    return planted_dataset(n_users=40, n_items=30, per_user=6)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, dataset) -> ModelRegistry:
    home = tmp_path_factory.mktemp("local") / "home"
    registry = ModelRegistry(Settings(home=home, model_name="recs"))
    for half_life in (None, 30.0, 5.0):
        registry.log_model(create_model("popularity", half_life_days=half_life).fit(dataset))
    return registry


def answer(read) -> int | str:
    try:
        return read()
    except NotFoundError:
        return "not found"


def test_aliases_agree_with_mlflow_through_promotions_and_rollbacks(registry):
    for step in (
        lambda: registry.promote("recs", 1),
        lambda: registry.promote("recs", 3),
        lambda: registry.promote("recs", 2, alias="challenger"),
        lambda: registry.rollback("recs"),
        lambda: registry.set_alias("recs", "challenger", 3),
    ):
        step()
        for alias in ("champion", "challenger"):
            local = answer(lambda: registry.local_version("recs", alias))  # noqa: B023
            assert local == answer(lambda: registry.resolve("recs", alias).version)  # noqa: B023
    assert registry.local_version("recs", "champion") == 1
    assert registry.local_version("recs", "challenger") == 3


def test_missing_aliases_models_and_versions_are_not_found(registry):
    registry.promote("recs", 1)
    with pytest.raises(NotFoundError, match="no version with alias 'staging'"):
        registry.local_version("recs", "staging")
    with pytest.raises(NotFoundError):
        registry.local_version("other", "champion")
    with pytest.raises(NotFoundError, match="has no version 9"):
        registry.local_version("recs", version=9)
    assert registry.local_version("recs", version=2) == 2


def test_a_deleted_version_is_not_found(tmp_path, dataset):
    registry = ModelRegistry(Settings(home=tmp_path / "home", model_name="recs"))
    for _ in range(2):
        registry.log_model(create_model("popularity").fit(dataset))
    registry.client.delete_model_version("recs", "1")
    with pytest.raises(NotFoundError):
        registry.get_version("recs", 1)
    with pytest.raises(NotFoundError, match="has no version 1"):
        registry.local_version("recs", version=1)
    assert registry.local_version("recs", version=2) == 2


def test_load_cached_serves_the_cached_model_or_defers_to_mlflow(tmp_path, registry, dataset):
    registry.promote("recs", 2, alias="candidate")
    model, version = registry.load_cached("recs", "candidate")
    assert version == 2 and model.params["half_life_days"] == 30.0
    original = create_model("popularity", half_life_days=30.0).fit(dataset)
    history = dataset.matrix[:5]
    np.testing.assert_allclose(model.score(history), original.score(history), rtol=1e-6)
    # another home on the same registry has nothing cached: MLflow downloads it
    replica = ModelRegistry(
        Settings(home=tmp_path / "replica", mlflow_tracking_uri=registry.tracking_uri)
    )
    assert replica.local_version("recs", "candidate") == 2
    assert replica.load_cached("recs", "candidate") is None
    # a tracking server is only asked through MLflow
    remote = ModelRegistry(Settings(home=tmp_path / "r", mlflow_tracking_uri="http://mlflow:5000"))
    assert remote.local_version("recs", "candidate") is None


def test_workspaces_leave_the_answer_to_mlflow(registry, monkeypatch):
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    assert registry.local_version("recs", "champion") is None


def test_loading_a_cached_alias_does_not_import_mlflow(registry):
    registry.promote("recs", 3)
    code = (
        "import sys\n"
        "from recstack.registry import ModelRegistry\n"
        "from recstack.settings import Settings\n"
        f"r = ModelRegistry(Settings(home={str(registry.settings.home)!r}, model_name='recs'))\n"
        "model, version = r.load_cached('recs', 'champion')\n"
        "print(version, 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["3", "False"]
