"""POST /v1/users/{user_id}/rank through the real app, and live reranker features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.serving.engine.rank import MAX_RANK_ITEMS, user_rank_features


def rank(served, user_id: str, payload: dict, status: int = 200) -> dict:
    response = served.client.post(
        f"/v1/users/{user_id}/rank", json=payload, headers=served.headers()
    )
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def two_stage_model(planted_ds):
    pytest.importorskip("lightgbm")
    from recstack.models.ranking.two_stage import TwoStageRecommender

    model = TwoStageRecommender(
        retrievers="ease,itemknn,popularity", candidates=30, rounds=40, folds=1
    )
    return model.fit(planted_ds)


def test_rank_scores_exactly_the_given_items_best_first(serve, als_model):
    with serve(als_model) as served:
        asked = ["i3", "i7", "i50", "i0", "i99"]
        body = rank(served, "u5", {"items": [*asked, "no-such-item"]})
        got = [item["item_id"] for item in body["items"]]
        assert sorted(got) == sorted(asked)
        scores = [item["score"] for item in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert body["unknown"] == ["no-such-item"]
        assert body["source"] == "model" and body["model"]["name"] == "als"
        # the same order as the model's own scores of those items
        model_user = als_model.users.index("u5")
        vector = als_model.user_factors[model_user]
        expected = sorted(
            asked, key=lambda i: -float(als_model.item_vectors()[als_model.items.index(i)] @ vector)
        )
        assert got == expected


def test_rank_rejects_empty_and_over_long_lists(serve, als_model):
    with serve(als_model) as served:
        empty = rank(served, "u5", {"items": []}, status=422)
        assert "items" in empty["error"]["message"]
        too_many = [f"i{j}" for j in range(MAX_RANK_ITEMS + 1)]
        long = rank(served, "u5", {"items": too_many}, status=422)
        assert (
            "items" in long["error"]["message"] and str(MAX_RANK_ITEMS) in long["error"]["message"]
        )
        rank(served, "u5", {"items": ["i1"], "bogus": 1}, status=422)


def test_rank_for_a_user_without_history_uses_popularity(serve, als_model):
    with serve(als_model) as served:
        body = rank(served, "stranger", {"items": ["i0", "i1", "i2"]})
        assert body["source"] == "popularity" and len(body["items"]) == 3


def test_rank_without_a_model_uses_popularity(serve):
    with serve(None) as served:
        body = rank(served, "u5", {"items": ["i0", "i100", "missing"]})
        assert body["source"] == "popularity" and body["unknown"] == ["missing"]


def test_two_stage_ranks_with_its_reranker_and_explains(serve, two_stage_model):
    with serve(two_stage_model) as served:
        asked = ["i2", "i6", "i10", "i41", "i77"]
        body = rank(served, "u9", {"items": asked, "explain": True, "context": {"device": "ios"}})
        got = {item["item_id"]: item["score"] for item in body["items"]}
        assert set(got) == set(asked)
        history = two_stage_model.items.indices([i for i, _ in served.engine.history("u9")])
        h = sp.csr_matrix(
            (np.ones(len(history), np.float32), (np.zeros(len(history), int), history)),
            shape=(1, two_stage_model.n_items),
        )
        idx, val = two_stage_model.score_items(
            h, np.array([two_stage_model.users.index("u9")]), two_stage_model.items.indices(asked)
        )
        expected = dict(zip(two_stage_model.items.externals(idx), val.tolist(), strict=True))
        for item_id, score in got.items():
            assert score == pytest.approx(expected[item_id], rel=1e-5)
        for item in body["items"]:
            assert item["features"] and all("feature" in f for f in item["features"])
            assert isinstance(item["explanation"], list)


def test_posted_event_changes_reranker_features_on_next_request(serve, two_stage_model):
    with serve(two_stage_model) as served:
        asked = ["i2", "i6", "i10", "i41"]
        before = user_rank_features(served.engine, "u9", asked)
        scores_before = {
            i["item_id"]: i["score"] for i in rank(served, "u9", {"items": asked})["items"]
        }
        seen = {i for i, _ in served.engine.history("u9")}
        new_item = next(f"i{j}" for j in range(120) if f"i{j}" not in seen and f"i{j}" not in asked)
        response = served.client.post(
            "/v1/events",
            json={"user_id": "u9", "item_id": new_item, "event_type": "view"},
            headers=served.headers("write"),
        )
        assert response.status_code == 200, response.text
        after = user_rank_features(served.engine, "u9", asked)
        for item_id in asked:
            assert after[item_id]["user_activity"] > before[item_id]["user_activity"]
        assert any(
            after[i]["cooc_sum"] != before[i]["cooc_sum"]
            or after[i]["affinity"] != before[i]["affinity"]
            for i in asked
        )
        # and the scores served by /rank follow the new features
        scored = rank(served, "u9", {"items": asked})["items"]
        assert any(i["score"] != scores_before[i["item_id"]] for i in scored)


def test_two_stage_serves_recommendations_by_the_same_route(serve, two_stage_model):
    with serve(two_stage_model) as served:
        body = served.recommend("u9", k=5, explain="true")
        got = [item["item_id"] for item in body["items"]]
        seen = {i for i, _ in served.engine.history("u9")}
        assert len(got) == 5 and not set(got) & seen
        assert body["model"]["name"] == "two_stage"
        assert any(item["explanation"] for item in body["items"])


def test_engine_rejects_empty_and_over_long_item_lists():
    from recstack.errors import InvalidRequestError, TooLargeError
    from recstack.serving.engine.rank import check_items

    with pytest.raises(InvalidRequestError, match="empty"):
        check_items([])
    with pytest.raises(TooLargeError, match=str(MAX_RANK_ITEMS)):
        check_items([str(i) for i in range(MAX_RANK_ITEMS + 1)])
    assert check_items(["b", "a", "b"]) == ["b", "a"]
