"""Search routed through an experiment: the arm's slot re-ranks, and the exposure carries the arm."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recstack.experiments.assignment import assign
from recstack.experiments.config import Experiment
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.serving.api.app import create_app
from recstack.serving.runtime.loader import CONTENT_SUFFIX
from recstack.settings import Settings
from recstack.store import Store

pytestmark = pytest.mark.torch

USERS = [f"u{n}" for n in range(60)]


@pytest.fixture(scope="module")
def home(tmp_path_factory, planted, planted_ds):
    """ALS champion, item-kNN challenger and a content model beside them for search."""
    from tests.serving.conftest import fill_store

    home = tmp_path_factory.mktemp("search-experiment") / "home"
    settings = Settings(home=home, rate_limit_per_minute=1_000_000, cache_ttl_seconds=0)
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill_store(store, planted)
    registry = ModelRegistry(settings)
    v1 = registry.log_model(create_model("als", factors=4, iterations=5).fit(planted_ds))
    registry.promote(settings.model_name, v1.version, "champion")
    v2 = registry.log_model(create_model("itemknn").fit(planted_ds))
    registry.promote(settings.model_name, v2.version, "challenger")
    content_name = settings.model_name + CONTENT_SUFFIX
    vc = registry.log_model(create_model("content").fit(planted_ds), name=content_name)
    registry.promote(content_name, vc.version, settings.serving_alias)
    keys = {s: store.create_api_key(s, s)[0] for s in ("read", "admin")}
    store.close()
    return settings, {s: {"Authorization": f"Bearer {k}"} for s, k in keys.items()}


def test_search_in_an_experiment_logs_an_exposure_with_the_arm(home):
    settings, headers = home
    arms = [
        {"name": "control", "model": "champion", "weight": 0.5},
        {"name": "treatment", "model": "challenger", "weight": 0.5},
    ]
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/v1/experiments", json={"key": "search", "arms": arms}, headers=headers["admin"]
        )
        assert created.status_code == 201, created.text
        started = client.post("/v1/experiments/search/start", headers=headers["admin"])
        assert started.status_code == 200, started.text
        experiment = Experiment.model_validate(started.json())
        users = {arm: next(u for u in USERS if assign(experiment, u) == arm) for arm in ("control", "treatment")}  # fmt: skip
        bodies = {}
        for arm, user in users.items():
            response = client.get(
                "/v1/search", params={"q": "item", "k": 5, "user_id": user}, headers=headers["read"]
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["experiment"] == {"key": "search", "arm": arm}
            assert body["personalised"] is True and len(body["items"]) == 5
            bodies[arm] = body
        anonymous = client.get("/v1/search", params={"q": "item", "k": 3}, headers=headers["read"])
        assert anonymous.status_code == 200 and anonymous.json()["experiment"] is None
    reader = Store.from_settings(settings)
    try:
        found = reader.exposures.find([b["recommendation_id"] for b in bodies.values()])
        for arm, body in bodies.items():
            row = found[body["recommendation_id"]]
            assert row["surface"] == "search" and row["user_id"] == users[arm]
            assert row["experiment"] == "search" and row["arm"] == arm
            assert [i["item_id"] for i in row["items"]] == [i["item_id"] for i in body["items"]]
        assert reader.exposures.count("search") == 2
    finally:
        reader.close()
