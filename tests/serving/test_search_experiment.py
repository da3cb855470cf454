"""Search routed through an experiment: the arm's slot re-ranks, and the exposure carries the arm."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recstack.experiments.assignment import assign
from recstack.experiments.config import Experiment
from recstack.serving.api.app import create_app
from recstack.store import Store

pytestmark = pytest.mark.torch

USERS = [f"u{n}" for n in range(60)]


@pytest.fixture(scope="module")
def home(tmp_path_factory, planted, planted_ds):
    """ALS champion, item-kNN challenger and a content model beside them for search."""
    from tests.serving.conftest import champion_challenger_home

    home = tmp_path_factory.mktemp("search-experiment") / "home"
    return champion_challenger_home(home, planted, planted_ds, ("read", "admin"), content=True)


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
