"""Writes through the API: durable in the store first, then live in the engine at once."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def served(serve, als_model):
    with serve(als_model) as s:
        yield s


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def post(served, payload: dict) -> dict:
    response = served.client.post("/v1/events", json=payload, headers=served.headers("write"))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_posted_event_changes_the_next_recommendation(served):
    before = ids(served.recommend("u13", k=10))
    n_before = served.store.get_user("u13")["n_events"]
    answer = post(served, {"user_id": "u13", "item_id": before[0], "event_type": "purchase"})
    assert answer == {"accepted": 1, "inserted": 1, "duplicates": 0}
    assert served.store.get_user("u13")["n_events"] == n_before + 1  # durable before the 2xx
    after = ids(served.recommend("u13", k=10))
    assert before[0] not in after and after != before
    assert served.engine.histories.is_changed("u13")  # folded in from the new history
    weights = dict(served.engine.history("u13"))
    assert weights[before[0]] == pytest.approx(4.0)  # purchase weight from the settings


def test_events_are_idempotent_by_event_id(served):
    event = {"event_id": "ev-1", "user_id": "u14", "item_id": "i3", "event_type": "view"}
    assert post(served, event)["inserted"] == 1
    again = post(served, {"events": [event, {**event}]})
    assert again == {"accepted": 2, "inserted": 0, "duplicates": 2}
    stored = served.store.user_history("u14")
    assert (stored["event_id"] == "ev-1").sum() == 1
    assert dict(served.engine.history("u14"))["i3"] == pytest.approx(
        1.0 + float((stored["item_id"] == "i3").sum() - 1)
    )


def test_partial_duplicates_leave_the_engine_equal_to_the_store(served):
    post(served, {"event_id": "p-1", "user_id": "u15", "item_id": "i7"})
    batch = {
        "events": [
            {"event_id": "p-1", "user_id": "u15", "item_id": "i7"},
            {"event_id": "p-2", "user_id": "u15", "item_id": "i7", "event_type": "complete"},
            {
                "event_id": "p-3",
                "user_id": "u16",
                "item_id": "i9",
                "event_type": "rate",
                "value": 3,
            },
        ]
    }
    assert post(served, batch) == {"accepted": 3, "inserted": 2, "duplicates": 1}
    for user in ("u15", "u16"):
        stored = served.store.user_history(user)
        weights = served.engine.weighting.weight_list(
            stored["event_type"].tolist(), stored["value"].tolist()
        )
        expected = stored.assign(w=weights).groupby("item_id")["w"].sum().to_dict()
        assert dict(served.engine.history(user)) == pytest.approx(expected)
    assert dict(served.engine.history("u16"))["i9"] == pytest.approx(3.0)  # rate x value


def test_a_new_users_first_events_already_personalise(served):
    popular = ids(served.client.get("/v1/popular?k=10", headers=served.headers()).json())
    cold = served.recommend("newcomer", k=10)
    assert cold["cold_start"] is True and ids(cold) == popular
    topic2 = [f"i{n}" for n in (2, 6, 10, 14, 18)]
    post(served, {"events": [{"user_id": "newcomer", "item_id": i} for i in topic2]})
    warm = served.recommend("newcomer", k=10)
    assert warm["cold_start"] is True  # the model never trained on this user ...
    picks = ids(warm)
    assert not set(picks) & set(topic2)
    assert np.mean([int(i[1:]) % 4 == 2 for i in picks]) >= 0.7  # ... but the fold-in knows them


def test_timestamps_accept_epoch_seconds_and_iso(served):
    post(served, {"event_id": "t-1", "user_id": "u17", "item_id": "i1", "timestamp": 1_700_000_000})
    post(
        served,
        {"event_id": "t-2", "user_id": "u17", "item_id": "i2", "timestamp": "2024-01-02T03:04:05Z"},
    )
    post(
        served,
        {"event_id": "t-3", "user_id": "u17", "item_id": "i3", "timestamp": "2024-01-02T03:04:05"},
    )
    stored = served.store.user_history("u17").set_index("event_id")["timestamp"]
    assert stored["t-1"] == 1_700_000_000
    assert stored["t-2"] == stored["t-3"] == 1_704_164_645


def test_purge_leaves_no_trace(served):
    served.recommend("u20", k=5)  # cached now
    assert served.state.cache.keys_for("u20")
    deleted = served.client.delete("/v1/users/u20", headers=served.headers("write"))
    assert deleted.status_code == 200
    assert deleted.json() == {"user_id": "u20", "events_deleted": 15}
    assert served.store.get_user("u20") is None
    assert len(served.store.user_history("u20")) == 0
    assert served.engine.history("u20") == []
    assert not served.engine.known_to_model("u20")
    assert "u20" not in served.state.live.synced
    assert served.state.cache.keys_for("u20") == []
    assert served.client.get("/v1/users/u20", headers=served.headers()).status_code == 404
    assert served.recommend("u20", k=5)["cold_start"] is True
    again = served.client.delete("/v1/users/u20", headers=served.headers("write"))
    assert again.status_code == 404
    snapshot = served.store.snapshot()
    assert "u20" not in snapshot.users


def test_put_item_without_content_model_is_recommendable_at_once(served):
    body = {
        "title": "Brand new",
        "text": "fresh",
        "attributes": {"genres": ["topic9"], "minutes": 42},
    }
    put = served.client.put("/v1/items/new-1", json=body, headers=served.headers("write"))
    assert put.status_code == 200
    assert put.json()["attributes"] == {"genres": ["topic9"], "minutes": 42}
    got = served.client.get("/v1/items/new-1", headers=served.headers()).json()
    assert got["title"] == "Brand new" and got["active"] is True
    # filterable by its new attribute value at once, and recommendable though the model never saw it
    only_new = served.recommend("u21", k=5, filter=json.dumps({"genres": {"in": ["topic9"]}}))
    assert ids(only_new) == ["new-1"]
    ranged = served.recommend("u21", k=5, filter=json.dumps({"minutes": {"gte": 40}}))
    assert ids(ranged) == ["new-1"]
    # events on it are accepted and count towards popularity
    post(served, {"events": [{"user_id": f"u{n}", "item_id": "new-1"} for n in range(30, 60)]})
    popular = served.client.get("/v1/popular?k=200", headers=served.headers()).json()["items"]
    assert {i["item_id"]: i["score"] for i in popular}["new-1"] == 30.0
    # a collaborative model cannot place it, so similar-items falls back to popularity
    similar = served.client.get("/v1/items/new-1/similar?k=3", headers=served.headers()).json()
    assert similar["source"] == "popularity" and "new-1" not in ids(similar)
    # and it takes a cold slot in a normal list (it is popular now)
    assert ids(served.recommend("u22", k=10)).index("new-1") == 5


def test_get_user_shows_attributes_and_recent_history(served):
    body = served.client.get("/v1/users/u23?limit=3", headers=served.headers()).json()
    assert body["user_id"] == "u23" and body["n_events"] == 15 and body["known_to_model"] is True
    assert len(body["history"]) == 3
    stamps = [e["timestamp"] for e in body["history"]]
    assert stamps == sorted(stamps, reverse=True)
