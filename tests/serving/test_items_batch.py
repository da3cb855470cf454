"""POST /v1/items/batch: one transaction in the store, one catalogue change in the engine, and
every other worker told."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest

from recstack.data.idmap import IdMap
from recstack.errors import DataError
from recstack.serving.engine.catalogue import Catalogue
from recstack.serving.engine.request import MAX_BATCH_ITEMS
from recstack.serving.runtime import service
from recstack.serving.runtime.broadcast import FileBroadcast
from recstack.serving.runtime.generations import GENERATIONS_FILE, SharedGenerations
from recstack.store import Store

BATCH = "/v1/items/batch"


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def new_items(n: int, prefix: str = "b") -> list[dict]:
    return [
        {"item_id": f"{prefix}{k}", "title": f"Batch {k}", "attributes": {"genres": ["batch"]}}
        for k in range(n)
    ]


@pytest.fixture
def served(serve, als_model):
    with serve(als_model) as s:
        yield s


def test_a_batch_is_stored_and_served_at_once(served):
    before = served.engine.n_items
    items = [
        *new_items(3),
        {"item_id": "i1", "attributes": {"genres": ["batch"], "minutes": 7}},
        {"item_id": "b0", "title": "Batch zero", "active": False},  # a repeat: applied in order
    ]
    response = served.client.post(BATCH, json={"items": items}, headers=served.headers("write"))
    assert response.status_code == 200, response.text
    assert response.json() == {"upserted": 4, "item_ids": ["b0", "b1", "b2", "i1"]}
    stored = served.store.get_item("b0")
    assert (stored["title"], stored["active"]) == ("Batch zero", False)
    assert stored["attributes"] == {"genres": ["batch"]}  # left out: kept from the first entry
    i1 = served.store.get_item("i1")
    assert i1["title"] and i1["attributes"] == {"genres": ["batch"], "minutes": 7}
    assert served.engine.n_items == before + 3
    options = {"k": 10, "exclude_seen": "false"}
    by_genre = served.recommend("u5", **options, filter=json.dumps({"genres": {"in": ["batch"]}}))
    assert sorted(ids(by_genre)) == ["b1", "b2", "i1"]  # b0 is inactive
    inactive = served.recommend(
        "u5", **options, filter=json.dumps({"genres": "batch", "active": False})
    )
    assert ids(inactive) == ["b0"]
    ranged = served.recommend("u5", **options, filter=json.dumps({"minutes": {"lt": 10}}))
    assert ids(ranged) == ["i1"]


def test_an_invalid_item_stores_nothing_and_is_named_by_index(served):
    items = new_items(4, "x")
    items[2]["title"] = "t" * 10_001
    response = served.client.post(BATCH, json={"items": items}, headers=served.headers("write"))
    assert response.status_code == 422
    assert "items.2.title" in response.json()["error"]["message"]
    missing_id = [{"item_id": "y0"}, {"title": "no id"}]
    response = served.client.post(
        BATCH, json={"items": missing_id}, headers=served.headers("write")
    )
    assert response.status_code == 422
    assert "items.1.item_id" in response.json()["error"]["message"]
    assert served.store.get_item("x0") is None and served.store.get_item("y0") is None
    assert not served.engine.has_item("x0")


def test_a_batch_over_the_limit_is_413_and_needs_a_write_key(served):
    too_many = {"items": [{"item_id": f"z{k}"} for k in range(MAX_BATCH_ITEMS + 1)]}
    response = served.client.post(BATCH, json=too_many, headers=served.headers("write"))
    assert response.status_code == 413
    assert str(MAX_BATCH_ITEMS) in response.json()["error"]["message"]
    assert served.store.get_item("z0") is None
    small = {"items": new_items(1)}
    assert served.client.post(BATCH, json=small, headers=served.headers()).status_code == 403
    assert served.client.post(BATCH, json=small).status_code == 401


def test_store_batch_is_one_transaction(store_settings):
    with Store.from_settings(store_settings) as store:
        store.upsert_item("keep", title="Before")
        records = [{"item_id": "keep", "title": "After"}, {"item_id": ""}]
        with pytest.raises(DataError, match="row 1 of the items"):
            store.upsert_items(records)
        assert store.get_item("keep")["title"] == "Before"
        bad = [{"item_id": "n1", "title": "ok"}, {"item_id": "n2", "attributes": {"a": "\x00"}}]
        with pytest.raises(DataError, match="row 1 of the items: attributes contains a NUL"):
            store.upsert_items(bad)  # PostgreSQL cannot hold it: refused on both backends
        assert store.get_item("n1") is None
        stored = store.upsert_items(
            [
                {"item_id": "keep", "attributes": {"a": 1}},
                {"item_id": "fresh", "title": "New", "active": False},
                {"item_id": "fresh", "title": "Newer"},  # the same id twice in one run
                {"item_id": "keep", "text": "Some text", "attributes": None},
            ]
        )
        assert [r["item_id"] for r in stored] == ["keep", "fresh", "fresh", "keep"]
        keep, fresh = store.get_item("keep"), store.get_item("fresh")
        assert (keep["title"], keep["text"], keep["attributes"]) == (
            "Before",
            "Some text",
            {"a": 1},
        )
        assert fresh["title"] == "Newer" and fresh["active"] is True
        assert stored[0] == keep and stored[1] == fresh


def test_batch_items_reach_another_worker_through_the_shared_ring(
    serve, second_worker, als_model, tmp_path
):
    ring = tmp_path / "workers"
    ring.mkdir()
    SharedGenerations.create(ring / GENERATIONS_FILE)
    FileBroadcast.create(ring)
    with serve(als_model, worker_state_dir=ring) as a, second_worker(a, als_model) as (b, engine):
        items = new_items(200, prefix="a-long-item-id-that-fills-the-ring-slots-")
        response = a.client.post(BATCH, json={"items": items}, headers=a.headers("write"))
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(engine.has_item(i["item_id"]) for i in items):
            time.sleep(0.05)
        assert all(engine.has_item(i["item_id"]) for i in items)
        found = b.get(f"/v1/items/{items[-1]['item_id']}", headers=a.headers()).json()
        assert found["title"] == items[-1]["title"]


@pytest.mark.redis
def test_batch_items_reach_another_worker_through_redis(
    serve, second_worker, als_model, redis_url, redis_prefix
):
    with serve(als_model, redis_url=redis_url, key_prefix=redis_prefix) as a:
        with second_worker(a, als_model, redis_prefix) as (_, engine):
            items = new_items(300, prefix="redis-batch-")
            response = a.client.post(BATCH, json={"items": items}, headers=a.headers("write"))
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not engine.has_item(items[-1]["item_id"]):
                time.sleep(0.05)
            assert all(engine.has_item(i["item_id"]) for i in items)


def test_broadcast_chunks_fit_a_ring_slot():
    item_ids = [f"item-{k}-" + "é" * (k % 40) for k in range(3000)]
    chunks = list(service._id_chunks(item_ids))
    assert [i for chunk in chunks for i in chunk] == item_ids
    for chunk in chunks:
        message = json.dumps({"origin": "0" * 32, "kind": "items", "items": chunk})
        assert len(message.encode()) <= 1024 - 12


def test_catalogue_batch_equals_one_item_at_a_time():
    rng = random.Random(7)

    def attributes() -> dict:
        out: dict = {}
        if rng.random() < 0.7:
            out["genres"] = rng.sample(["x", "y", "z", 1, 2.0, True], rng.randint(0, 3))
        if rng.random() < 0.5:
            out["year"] = rng.choice([1990, 2000.5, None, "old"])
        return out

    for _ in range(100):
        n = rng.randint(0, 8)
        catalogue = Catalogue.build(
            IdMap([f"i{k}" for k in range(n)]),
            [f"t{k}" for k in range(n)],
            [attributes() for _ in range(n)],
            [rng.random() < 0.8 for _ in range(n)],
        )
        batch = [
            (f"i{rng.randint(0, 12)}", f"T{k}", attributes(), rng.random() < 0.5)
            for k in range(rng.randint(1, 10))
        ]
        one_by_one = catalogue
        for item_id, title, attrs, active in batch:
            one_by_one, _, _ = one_by_one.with_item(
                item_id, title=title, attributes=attrs, active=active
            )
        at_once, positions, is_new = catalogue.with_items(batch)
        distinct = list(dict.fromkeys(item_id for item_id, *_ in batch))
        assert positions == [at_once.position(i) for i in distinct]
        assert is_new == [catalogue.position(i) < 0 for i in distinct]
        assert at_once.ids == one_by_one.ids and at_once.raw == one_by_one.raw
        assert list(at_once.titles) == list(one_by_one.titles)
        assert np.array_equal(at_once.active, one_by_one.active)
        assert set(at_once.attributes) == set(one_by_one.attributes)
        for name, column in one_by_one.attributes.items():
            other = at_once.attributes[name]
            assert column.members.keys() == other.members.keys()
            for key, rows in column.members.items():
                assert np.array_equal(rows, other.members[key])
            if column.numbers is None:
                assert other.numbers is None
            else:
                assert np.array_equal(column.numbers, other.numbers, equal_nan=True)
