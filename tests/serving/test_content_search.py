"""Semantic search and brand-new items through the content model (sentence embeddings)."""

from __future__ import annotations

import pytest

from recstack.models.catalog import create_model

pytestmark = pytest.mark.torch

NEW_ITEMS = {
    "py-basics": ("Python programming basics", "Learn to write your first Python programs."),
    "py-advanced": ("Advanced Python programming", "Decorators, generators and typing in Python."),
    "paint": ("Watercolor painting", "Brushes, pigments and washes for beginner painters."),
}


@pytest.fixture(scope="module")
def content_model(planted_ds):
    return create_model("content").fit(planted_ds)


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def put_new_items(served) -> None:
    for item_id, (title, text) in NEW_ITEMS.items():
        response = served.client.put(
            f"/v1/items/{item_id}",
            json={"title": title, "text": text, "attributes": {"genres": ["new"]}},
            headers=served.headers("write"),
        )
        assert response.status_code == 200, response.text


def put_new_items_in_one_batch(served) -> None:
    items = [
        {"item_id": item_id, "title": title, "text": text, "attributes": {"genres": ["new"]}}
        for item_id, (title, text) in NEW_ITEMS.items()
    ]
    response = served.client.post(
        "/v1/items/batch", json={"items": items}, headers=served.headers("write")
    )
    assert response.status_code == 200, response.text


PUTS = pytest.mark.parametrize("put", [put_new_items, put_new_items_in_one_batch])


@PUTS
def test_new_items_are_similar_and_searchable_at_once(serve, als_model, content_model, put):
    with serve(als_model, content=content_model) as s:
        put(s)
        similar = s.client.get("/v1/items/py-basics/similar?k=3", headers=s.headers()).json()
        assert similar["source"] == "content"
        assert ids(similar)[0] == "py-advanced"
        found = s.client.get(
            "/v1/search", params={"q": "learn to code in python", "k": 3}, headers=s.headers()
        ).json()
        assert set(ids(found)[:2]) == {"py-basics", "py-advanced"}
        assert found["personalised"] is False and found["model"]["name"] == "content"
        painting = s.client.get(
            "/v1/search", params={"q": "painting with watercolours", "k": 1}, headers=s.headers()
        )
        assert ids(painting.json()) == ["paint"]
        # a warm item's similar list from the collaborative model also gets new items' cold slots
        warm = s.client.get("/v1/items/i5/similar?k=10", headers=s.headers()).json()
        assert warm["source"] == "model" and len(warm["items"]) == 10


def test_cold_items_reach_users_through_content_similarity(serve, als_model, content_model):
    with serve(als_model, content=content_model) as s:
        put_new_items(s)
        events = [{"user_id": "coder", "item_id": "py-basics", "event_type": "complete"}]
        assert (
            s.client.post(
                "/v1/events", json={"events": events}, headers=s.headers("write")
            ).status_code
            == 200
        )
        body = s.recommend("coder", k=10, explain="true")
        picks = ids(body)
        assert "py-advanced" in picks and "py-basics" not in picks
        pick = body["items"][picks.index("py-advanced")]
        assert pick["explanation"][0]["item_id"] == "py-basics"
        assert pick["explanation"][0]["title"] == "Python programming basics"


def test_personalised_search_reranks_for_the_user(serve, als_model, content_model):
    with serve(als_model, content=content_model) as s:
        query = {"q": "a course about a topic", "k": 10}
        plain = s.client.get("/v1/search", params=query, headers=s.headers()).json()
        mine = s.client.get(
            "/v1/search", params={**query, "user_id": "u4"}, headers=s.headers()
        ).json()
        assert mine["personalised"] is True and mine["user_id"] == "u4"
        assert len(ids(mine)) == 10
        history = s.store.user_history("u4")["item_id"].map(lambda i: int(i[1:]) % 4)
        own = int(history.mode().iloc[0])
        share = lambda body: sum(int(i[1:]) % 4 == own for i in ids(body) if i.startswith("i"))  # noqa: E731
        assert share(mine) >= share(plain)


@PUTS
def test_content_model_as_the_served_model(serve, content_model, put):
    with serve(content_model) as s:
        body = s.recommend("u6", k=5)
        assert body["model"]["name"] == "content" and len(body["items"]) == 5
        put(s)
        s.client.post(
            "/v1/events",
            json={"user_id": "painter", "item_id": "paint", "event_type": "complete"},
            headers=s.headers("write"),
        )
        similar = s.client.get("/v1/items/py-advanced/similar?k=1", headers=s.headers()).json()
        assert similar["source"] == "model" and ids(similar) == ["py-basics"]
        assert s.engine.items.n_model == s.engine.n_items  # the content model covers new items


def test_search_without_content_model_is_503(serve, als_model):
    with serve(als_model) as s:
        response = s.client.get("/v1/search?q=python", headers=s.headers())
        assert response.status_code == 503
        assert "content model" in response.json()["error"]["message"]


def test_a_batch_re_describes_items_for_search_at_once(serve, als_model, content_model):
    with serve(als_model, content=content_model) as s:
        put_new_items_in_one_batch(s)
        query = {"q": "watercolor painting with brushes", "k": 1}
        assert ids(s.client.get("/v1/search", params=query, headers=s.headers()).json()) == [
            "paint"
        ]
        redescribed = {
            "items": [
                {"item_id": "paint", "title": "Python for data", "text": "Pandas and numpy."},
                {"item_id": "py-basics", "text": "Painting watercolor landscapes with brushes."},
            ]
        }
        response = s.client.post("/v1/items/batch", json=redescribed, headers=s.headers("write"))
        assert response.status_code == 200, response.text
        found = s.client.get("/v1/search", params=query, headers=s.headers()).json()
        assert ids(found) == ["py-basics"]
