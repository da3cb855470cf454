"""Spark-trained ALS is a standard recstack artifact: registered, loaded, folded in, served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.models.als import ALSRecommender
from recstack.settings import Settings
from recstack.testing.data import planted_frame

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def canonical_dir(tmp_path_factory) -> Path:
    """The planted interactions written as the ETL writes them (canonical Parquet)."""
    inter, _ = planted_frame()
    root = tmp_path_factory.mktemp("canonical")
    inter.to_parquet(root / "part-0.parquet", index=False)
    return root


@pytest.fixture(scope="module")
def registered(spark, canonical_dir, tmp_path_factory):
    from recstack.distributed.register import train_and_register_spark
    from recstack.registry.mlflow_registry import ModelRegistry

    settings = Settings(home=tmp_path_factory.mktemp("home"))
    version = train_and_register_spark(
        settings,
        spark,
        canonical_dir,
        params={"factors": 8, "iterations": 10, "alpha": 10.0, "regularization": 1.0},
        promote="champion",
    )
    model = ModelRegistry(settings).load(alias="champion")
    return version, model


def test_train_als_registers_a_standard_artifact(registered):
    version, model = registered
    assert version.aliases == ["champion"] and version.model == "als"
    assert isinstance(model, ALSRecommender)
    assert model.user_factors.shape == (200, 8) and model.item_factors.shape == (120, 8)
    assert model.config.regularization == pytest.approx(1.0)  # mapped back, as documented
    per_user = 15  # planted users each have 15 distinct items
    assert model.meta.metrics["spark_reg_param"] == pytest.approx(1.0 / per_user)


def test_fold_in_of_an_unseen_user_follows_their_history(registered):
    _, model = registered
    inter, _ = planted_frame()
    # a new user who viewed items of topic 1 (items i1, i5, i9, ...)
    topic = [f"i{i}" for i in range(1, 120, 4)][:6]
    history = sp.csr_matrix(
        (np.ones(len(topic), np.float32), (np.zeros(len(topic), int), model.items.indices(topic))),
        shape=(1, model.n_items),
    )
    vector = model.fold_in(history)
    assert np.abs(vector).sum() > 0
    idx, _ = model.recommend(history, 10, users=np.array([-1]))
    recommended = model.items.externals(idx[0])
    same_topic = sum(int(item[1:]) % 4 == 1 for item in recommended)
    assert same_topic >= 7, recommended


def test_spark_model_served_and_a_posted_event_shows_in_the_next_answer(registered, serve):
    _, model = registered
    with serve(model) as served:
        before = [i["item_id"] for i in served.recommend("u13", k=10)["items"]]
        response = served.client.post(
            "/v1/events",
            json={"user_id": "u13", "item_id": before[0], "event_type": "purchase"},
            headers=served.headers("write"),
        )
        assert response.status_code == 200, response.text
        after = [i["item_id"] for i in served.recommend("u13", k=10)["items"]]
        assert before[0] not in after and after != before

        fresh = served.recommend("newcomer", k=5)  # unknown user: served, not an error
        assert len(fresh["items"]) == 5


def test_score_writes_top_k_for_every_user(spark, registered, canonical_dir, tmp_path):
    from recstack.distributed.etl import read_canonical
    from recstack.distributed.score import score_all_users

    _, model = registered
    written = score_all_users(
        spark, model, read_canonical(spark, canonical_dir), tmp_path / "s", k=5
    )
    scores = pd.read_parquet(tmp_path / "s")
    assert written == len(scores) == 200 * 5
    ranks = scores.groupby("user_id")["rank"].apply(lambda r: sorted(r) == [1, 2, 3, 4, 5])
    assert ranks.all()
    inter, _ = planted_frame()
    seen = set(zip(inter["user_id"], inter["item_id"], strict=True))
    assert not any(
        (u, i) in seen for u, i in zip(scores["user_id"], scores["item_id"], strict=True)
    )
    user = "u7"
    items = inter.loc[inter["user_id"] == user, "item_id"]
    history = sp.csr_matrix(
        (np.ones(len(items), np.float32), (np.zeros(len(items), int), model.items.indices(items))),
        shape=(1, model.n_items),
    )
    idx, _ = model.recommend(history, 5, users=np.array([model.users.index(user)]))
    ours = scores[scores["user_id"] == user].sort_values("rank")["item_id"].tolist()
    assert ours == model.items.externals(idx[0])
