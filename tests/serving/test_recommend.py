"""Recommendations over HTTP: relevance, filters, exclusions, explanations, GET == POST."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recstack.models.catalog import create_model
from recstack.serving.api.routers.recommend import rendered
from recstack.serving.api.schemas import RecommendationResponse


@pytest.fixture(scope="module")
def itemknn_model(planted_ds):
    return create_model("itemknn").fit(planted_ds)


@pytest.fixture
def served(serve, als_model):
    with serve(als_model) as s:
        yield s


def topic(item_id: str) -> int:
    return int(item_id[1:]) % 4


def user_topic(store, user_id: str) -> int:
    history = store.user_history(user_id)["item_id"].map(topic)
    return int(history.mode().iloc[0])


def test_known_user_gets_k_unseen_relevant_items(served):
    body = served.recommend("u3", k=10)
    items = [i["item_id"] for i in body["items"]]
    assert len(items) == 10 and len(set(items)) == 10
    assert body["cold_start"] is False
    assert body["model"] == {"name": "als", "version": 1, "registered_name": "recstack"}
    seen = set(served.store.user_history("u3")["item_id"])
    assert not seen & set(items)
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["title"].startswith("Item ") for i in body["items"])
    # planted structure: most picks come from the user's own topic (chance would be 1/4)
    hits = []
    for user in (f"u{n}" for n in range(20)):
        own = user_topic(served.store, user)
        hits += [topic(i["item_id"]) == own for i in served.recommend(user, k=10)["items"]]
    assert np.mean(hits) >= 0.6


def test_exclude_seen_false_may_return_history(served):
    seen = set(served.store.user_history("u3")["item_id"])
    items = {i["item_id"] for i in served.recommend("u3", k=30, exclude_seen="false")["items"]}
    assert items & seen


def test_filters_membership_range_equality_and_ids(served):
    c, h = served.client, served.headers()
    flt = {"genres": {"in": ["topic2", "topic3"]}}
    items = [i["item_id"] for i in served.recommend("u5", k=20, filter=json.dumps(flt))["items"]]
    assert len(items) == 20 and {topic(i) for i in items} <= {2, 3}

    flt = {"difficulty": {"gte": 1, "lte": 1}}
    items = [i["item_id"] for i in served.recommend("u5", k=15, filter=json.dumps(flt))["items"]]
    assert len(items) == 15 and all(int(i[1:]) % 3 == 1 for i in items)

    flt = {"genres": "topic0", "difficulty": {"nin": [0]}, "item_id": {"nin": ["i4", "i8"]}}
    body = c.post("/v1/users/u5/recommendations", json={"k": 100, "filter": flt}, headers=h).json()
    items = [i["item_id"] for i in body["items"]]
    seen = set(served.store.user_history("u5")["item_id"])
    expected = {f"i{n}" for n in range(120) if n % 4 == 0 and n % 3 != 0} - {"i4", "i8"} - seen
    assert set(items) == expected  # fewer than k eligible: all of them, nothing else


def test_get_and_post_forms_agree(served):
    flt = {"genres": {"in": ["topic1"]}, "difficulty": {"lt": 2}}
    get = served.recommend("u7", k=8, filter=json.dumps(flt), exclude=["i1", "i5"])
    post = served.client.post(
        "/v1/users/u7/recommendations",
        json={"k": 8, "filter": flt, "exclude": ["i1", "i5"]},
        headers=served.headers(),
    ).json()
    assert [i["item_id"] for i in get["items"]] == [i["item_id"] for i in post["items"]]
    assert not {"i1", "i5"} & {i["item_id"] for i in get["items"]}
    # the GET form's directly dumped body is what the model's serialisation gives (POST)
    fresh = {"request_id": None, "recommendation_id": None}  # new per response
    assert {**get, **fresh} == {**post, **fresh}
    assert list(get["items"][0]) == list(post["items"][0])


def test_rendered_bodies_fall_back_to_the_model_for_unusual_values():
    body = {
        "user_id": "u",
        "items": [{"item_id": "a", "score": np.float32(0.5), "title": None, "explanation": None}],
        "model": {"name": "als", "version": 1, "registered_name": "r"},
        "request_id": "x",
        "cold_start": False,
        "recommendation_id": "r",
        "experiment": None,
    }
    assert json.loads(rendered(body).body)["items"][0]["score"] == 0.5  # numpy scalar
    body["items"][0]["score"] = float("nan")
    assert json.loads(rendered(body).body)["items"][0]["score"] is None  # NaN: null, not NaN
    body["items"][0]["score"] = 0.25
    direct = rendered(body).body
    assert direct == RecommendationResponse.model_validate(body).model_dump_json().encode()


def test_inactive_items_are_only_returned_when_asked(served):
    c = served.client
    top = served.recommend("u9", k=1)["items"][0]["item_id"]
    put = c.put(f"/v1/items/{top}", json={"active": False}, headers=served.headers("write"))
    assert put.status_code == 200 and put.json()["active"] is False
    assert put.json()["title"].startswith("Item ")  # fields left out keep their values
    items = [i["item_id"] for i in served.recommend("u9", k=10)["items"]]
    assert top not in items
    inactive = served.recommend("u9", k=10, filter=json.dumps({"active": False}))["items"]
    assert [i["item_id"] for i in inactive] == [top]


def test_explanations_name_history_items_with_titles(served):
    body = served.recommend("u11", k=5, explain="true")
    history = set(served.store.user_history("u11")["item_id"])
    for item in body["items"]:
        assert item["explanation"], item
        for because in item["explanation"]:
            assert because["item_id"] in history
            assert (
                because["title"]
                == f"Item {because['item_id'][1:]} of topic {topic(because['item_id'])}"
            )
            assert because["weight"] > 0


def test_non_factor_model_is_served_through_model_recommend(serve, itemknn_model):
    with serve(itemknn_model) as s:
        body = s.recommend("u2", k=10, filter=json.dumps({"genres": {"in": ["topic1", "topic2"]}}))
        items = [i["item_id"] for i in body["items"]]
        assert len(items) == 10 and {topic(i) for i in items} <= {1, 2}
        assert body["model"]["name"] == "itemknn"
        assert not set(items) & set(s.store.user_history("u2")["item_id"])
        similar = s.client.get("/v1/items/i8/similar?k=5", headers=s.headers()).json()
        assert similar["source"] == "model" and len(similar["items"]) == 5
        assert "i8" not in {i["item_id"] for i in similar["items"]}


def test_without_a_model_the_server_serves_popularity(serve):
    with serve(None) as s:
        body = s.recommend("u1", k=5)
        assert body["model"]["name"] == "popularity" and body["model"]["version"] is None
        counts = s.store.snapshot().item_popularity
        seen = set(s.store.user_history("u1")["item_id"])
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert not seen & {i["item_id"] for i in body["items"]}
        assert max(scores) <= counts.max()
        ready = s.client.get("/readyz")
        assert ready.status_code == 503
        assert any("no model" in r for r in ready.json()["reasons"])


def test_similar_items_follow_the_planted_topics(served):
    body = served.client.get("/v1/items/i6/similar?k=10", headers=served.headers()).json()
    items = [i["item_id"] for i in body["items"]]
    assert body["source"] == "model" and len(items) == 10 and "i6" not in items
    assert sum(topic(i) == topic("i6") for i in items) >= 7
    assert np.all(np.diff([i["score"] for i in body["items"]]) <= 1e-6)
