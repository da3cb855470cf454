"""The synthetic e-learning generator: shape, determinism, funnel, planted structure, round trip."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from recstack.data.dataset import Dataset
from recstack.data.loaders import load_interactions, load_items, load_users
from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from recstack.data.splits import stratified_split
from recstack.data.synthetic import generate_synthetic, write_loaded

FUNNEL = ("view", "bookmark", "start", "complete", "rate")


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(400, 150, 8_000, seed=3)


def test_shape_and_dtypes(small):
    inter, items, users = small.interactions, small.items, small.users
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert tuple(items.columns) == ITEM_COLUMNS and tuple(users.columns) == USER_COLUMNS
    assert len(inter) == 8_000 and len(items) == 150 and len(users) == 400
    assert inter["value"].dtype == np.float64 and inter["timestamp"].dtype == np.int64
    assert inter["event_id"].tolist()[:3] == ["s3-0", "s3-1", "s3-2"]
    assert inter["event_id"].is_unique
    assert inter["timestamp"].is_monotonic_increasing  # ids follow time
    assert set(inter["event_type"]) == set(FUNNEL)
    assert set(inter["user_id"]) <= set(users["user_id"])
    assert set(inter["item_id"]) <= set(items["item_id"])
    rated = inter["event_type"] == "rate"
    assert set(inter.loc[rated, "value"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter.loc[~rated, "value"].isna().all()
    assert inter["context"].isna().all()


def test_course_metadata(small):
    items = small.items
    pattern = re.compile(r"^(Beginner|Intermediate|Advanced) [A-Za-z ]+: [A-Za-z0-9.\- ]+ \d+$")
    assert all(pattern.match(t) for t in items["title"]), items["title"].head().tolist()
    first = items["attributes"].iloc[0]
    assert set(first) == {"topic", "subtopic", "difficulty", "level", "duration_minutes", "genres"}
    assert first["difficulty"] in (1, 2, 3) and first["genres"] == [first["topic"]]
    assert first["level"] in items["title"].iloc[0].lower()
    assert all(a["subtopic"] in t for a, t in zip(items["attributes"], items["text"], strict=True))
    assert items["title"].is_unique
    user = small.users["attributes"].iloc[0]
    assert set(user) == {"skill_level", "top_topic", "interests"}
    assert user["interests"][0] == user["top_topic"]


def test_deterministic_per_seed():
    a = generate_synthetic(120, 60, 2_000, seed=7)
    b = generate_synthetic(120, 60, 2_000, seed=7)
    c = generate_synthetic(120, 60, 2_000, seed=8)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert not a.interactions[["user_id", "item_id"]].equals(c.interactions[["user_id", "item_id"]])


def test_funnel_order_per_learner_and_course(small):
    inter = small.interactions
    steps = inter.pivot_table(
        index=["user_id", "item_id"], columns="event_type", values="timestamp", aggfunc="min"
    )
    assert steps["view"].notna().all()  # every engagement starts with a view
    assert (steps["complete"].isna() | steps["start"].notna()).all()
    assert (steps["rate"].isna() | steps["complete"].notna()).all()
    assert (steps["start"].dropna() >= steps["view"][steps["start"].notna()]).all()
    both = steps["complete"].notna()
    assert (steps.loc[both, "complete"] > steps.loc[both, "start"]).all()
    assert not inter.duplicated(["user_id", "item_id", "event_type"]).any()
    counts = inter["event_type"].value_counts()
    assert counts["view"] > counts["start"] > counts["complete"] > counts["rate"]


def test_events_concentrate_on_interest_topics(small):
    inter = small.interactions
    topics = pd.Series(
        [a["topic"] for a in small.items["attributes"]], index=small.items["item_id"]
    )
    top = pd.Series(
        [a["top_topic"] for a in small.users["attributes"]], index=small.users["user_id"]
    )
    on_top = inter["item_id"].map(topics).to_numpy() == inter["user_id"].map(top).to_numpy()
    assert topics.nunique() == 20
    in_top = on_top[(inter["event_type"] == "view").to_numpy()].mean()
    assert in_top > 0.4  # vs. about 1/20 if picks ignored interests
    start_top = on_top[(inter["event_type"] == "start").to_numpy()].mean()
    assert start_top > in_top  # interest also drives the funnel


def _ndcg_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    scores = np.where(train > 0, -np.inf, scores)
    top = np.argsort(-scores, axis=1)[:, :10]
    hits = np.take_along_axis(test > 0, top, axis=1)
    discount = 1.0 / np.log2(np.arange(2, 12))
    dcg = (hits * discount).sum(axis=1)
    n_relevant = np.minimum((test > 0).sum(axis=1), 10)
    ideal = np.cumsum(discount)[np.maximum(n_relevant - 1, 0)]
    keep = n_relevant > 0
    return float((dcg[keep] / ideal[keep]).mean())


def test_collaborative_model_beats_popularity_twice():
    data = generate_synthetic(1500, 600, 45_000, seed=11)
    train, test = stratified_split(Dataset.from_frame(data.interactions), 0.75, seed=1)
    x = (train.matrix.toarray() > 0).astype(np.float64)
    y = test.matrix.toarray()
    popularity = np.tile(x.sum(axis=0), (x.shape[0], 1))
    gram = x.T @ x + 200.0 * np.eye(x.shape[1])  # EASE closed form
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    ease = _ndcg_at_10(x @ weights, x, y)
    pop = _ndcg_at_10(popularity, x, y)
    assert ease >= 2.0 * pop, (ease, pop)


def test_write_loaded_round_trip(small, tmp_path):
    paths = write_loaded(small, tmp_path / "out")
    assert [p.name for p in paths] == ["interactions.parquet", "items.parquet", "users.parquet"]
    inter = load_interactions(paths[0]).interactions
    pd.testing.assert_frame_equal(inter, small.interactions)
    items = load_items(paths[1]).items
    pd.testing.assert_frame_equal(items, small.items)
    users = load_users(paths[2]).users
    pd.testing.assert_frame_equal(users, small.users)


def test_write_loaded_keeps_context_and_inactive_items(tmp_path):
    data = generate_synthetic(20, 10, 50, seed=1)
    data.interactions.loc[0, "context"] = '{"device":"web"}'
    data.items.loc[2, "active"] = False
    data.items.loc[3, "title"] = None
    paths = write_loaded(data, tmp_path)
    assert load_interactions(paths[0]).interactions["context"].tolist()[:2] == [
        '{"device":"web"}',
        None,
    ]
    items = load_items(paths[1]).items
    assert items["active"].tolist()[:4] == [True, True, False, True]
    assert items["title"].iloc[3] is None


def test_progress_bar_and_bad_sizes(capsys):
    data = generate_synthetic(30, 12, 100, seed=0, progress=True)
    assert len(data.interactions) == 100
    assert "generating synthetic data" in capsys.readouterr().err
    with pytest.raises(ValueError, match="n_items >= 3"):
        generate_synthetic(10, 2, 5)
    with pytest.raises(ValueError, match="do not fit"):
        generate_synthetic(2, 3, 7)
    assert len(generate_synthetic(5, 5, 0).interactions) == 0
