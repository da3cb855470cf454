"""The write paths end to end on both store backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import json


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_events_items_and_purge_on_each_backend(serve, als_model, store_url):
    with serve(als_model, store_url=store_url) as s:
        write = s.headers("write")
        before = ids(s.recommend("u50", k=10))
        batch = {
            "events": [
                {
                    "event_id": "b-1",
                    "user_id": "u50",
                    "item_id": before[0],
                    "event_type": "rate",
                    "value": 5,
                },
                {
                    "event_id": "b-2",
                    "user_id": "u50",
                    "item_id": before[1],
                    "context": {"device": "tv"},
                },
            ]
        }
        assert s.client.post("/v1/events", json=batch, headers=write).json()["inserted"] == 2
        assert s.client.post("/v1/events", json=batch, headers=write).json()["duplicates"] == 2
        history = s.store.user_history("u50")
        assert set(history["event_id"]) >= {"b-1", "b-2"}
        assert json.loads(history.set_index("event_id").loc["b-2", "context"]) == {"device": "tv"}
        after = ids(s.recommend("u50", k=10))
        assert not {before[0], before[1]} & set(after)

        item = {"title": "Fresh", "attributes": {"genres": ["topic1"], "level": 3}}
        assert s.client.put("/v1/items/fresh", json=item, headers=write).status_code == 200
        filtered = s.recommend("u50", k=3, filter=json.dumps({"level": {"gte": 3}}))
        assert ids(filtered) == ["fresh"]
        assert (
            s.client.get("/v1/items/fresh", headers=s.headers()).json()["attributes"]["level"] == 3
        )

        gone = s.client.delete("/v1/users/u50", headers=write)
        assert gone.json()["events_deleted"] == 17
        assert s.store.get_user("u50") is None and len(s.store.user_history("u50")) == 0
        assert s.engine.history("u50") == []
        assert s.client.get("/readyz").status_code == 200
