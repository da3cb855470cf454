"""A slot serving a precomputed list set from the store (``precomputed:NAME``) over HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recstack.store.precomputed import ListChunk

# u3's stored list, best first; u3 has seen none of these in the planted data
U3_LIST = [("i6", 0.9), ("i7", 0.8), ("i10", 0.7), ("i13", 0.6), ("i14", 0.5), ("i22", 0.4)]


def write_set(store, name: str, lists: dict[str, list[tuple[str, float]]]) -> int:
    users = [u for u, rows in lists.items() for _ in rows]
    items = [i for rows in lists.values() for i, _ in rows]
    scores = [s for rows in lists.values() for _, s in rows]
    chunk = ListChunk(np.array(users, object), np.array(items, object), np.array(scores))
    return store.precomputed.write(name, [chunk]).generation


def unseen_list(served, user: str) -> list[tuple[str, float]]:
    seen = set(served.store.user_history(user)["item_id"])
    assert not seen & {i for i, _ in U3_LIST}
    return U3_LIST


def get(served, user: str, **params):
    return served.client.get(
        f"/v1/users/{user}/recommendations",
        params={"slot": "pre", **params},
        headers=served.headers("admin"),
    )


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


@pytest.fixture
def served(serve, als_model):
    with serve(als_model) as served:
        yield served


def test_a_precomputed_slot_serves_the_stored_lists(served):
    lists = {"u3": unseen_list(served, "u3"), "u7": [("i0", 3.0), ("i1", 2.0)]}
    generation = write_set(served.store, "batch", lists)
    admin = served.headers("admin")
    loaded = served.client.put(
        "/v1/admin/slots/pre", json={"ref": "precomputed:batch"}, headers=admin
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["model"] == {
        "name": "precomputed", "version": generation, "registered_name": "batch",
    }  # fmt: skip
    assert loaded.json()["ref"] == "precomputed:batch"

    body = get(served, "u3", k=4).json()
    assert [(i["item_id"], round(i["score"], 4)) for i in body["items"]] == U3_LIST[:4]
    assert body["cold_start"] is False and body["items"][0]["explanation"] is None
    assert ids(get(served, "u3", k=10).json()) == [i for i, _ in U3_LIST]  # only what is stored
    topic2 = json.dumps({"genres": "topic2"})  # i6, i10, i14, i22 (item n is topic n % 4)
    assert ids(get(served, "u3", k=3, filter=topic2).json()) == ["i6", "i10", "i14"]
    assert ids(get(served, "u3", k=3, exclude=["i7"]).json()) == ["i6", "i10", "i13"]
    explained = get(served, "u3", k=2, explain="true").json()
    assert [i["explanation"] for i in explained["items"]] == [[], []]

    # an event posted after the lists were computed removes the item from the next answer
    event = {"user_id": "u3", "item_id": "i6", "event_type": "purchase"}
    posted = served.client.post("/v1/events", json=event, headers=served.headers("write"))
    assert posted.status_code == 200, posted.text
    assert ids(get(served, "u3", k=3).json()) == ["i7", "i10", "i13"]
    assert ids(get(served, "u3", k=3, exclude_seen="false").json()) == ["i6", "i7", "i10"]

    # users without a stored list are cold starts, served popularity like unknown users
    popular = ids(served.client.get(
        "/v1/users/nobody/recommendations", params={"k": 5}, headers=served.headers()
    ).json())  # fmt: skip
    stranger = get(served, "nobody", k=5).json()
    assert ids(stranger) == popular and stranger["cold_start"] is True
    u5 = get(served, "u5", k=5).json()  # has a history, but no list
    seen = set(served.store.user_history("u5")["item_id"])
    engine = served.engine
    popularity = engine.histories.popularity(engine.n_items)
    ranked = [i for i in engine.catalogue.ids.externals(np.argsort(-popularity, kind="stable"))]
    assert u5["cold_start"] is True and not set(ids(u5)) & seen
    assert ids(u5) == [i for i in ranked if i not in seen][:5]
    # similar items of a list slot come from popularity (no similarity is stored)
    similar = served.client.get("/v1/items/i2/similar", params={"k": 3, "slot": "pre"},
                                headers=admin)  # fmt: skip
    assert similar.status_code == 200 and len(similar.json()["items"]) == 3


def test_reloading_the_slot_picks_up_a_replaced_set(served):
    admin = served.headers("admin")
    write_set(served.store, "batch", {"u3": U3_LIST})
    put = served.client.put("/v1/admin/slots/pre", json={"ref": "precomputed:batch"}, headers=admin)
    assert put.status_code == 200
    assert ids(get(served, "u3", k=2).json()) == ["i6", "i7"]
    second = write_set(served.store, "batch", {"u3": [("i19", 1.0), ("i23", 0.5)]})
    assert ids(get(served, "u3", k=2).json()) == ["i6", "i7"]  # loaded lists serve until reload
    reload = served.client.put("/v1/admin/slots/pre", json={}, headers=admin)  # the slot's ref
    assert reload.status_code == 200 and reload.json()["model"]["version"] == second
    body = get(served, "u3", k=2).json()
    assert ids(body) == ["i19", "i23"] and body["model"]["version"] == second


def test_an_unknown_set_is_a_clear_404_and_the_slot_is_not_loaded(served):
    write_set(served.store, "batch", {"u3": U3_LIST})
    admin = served.headers("admin")
    bad = served.client.put("/v1/admin/slots/pre", json={"ref": "precomputed:nope"}, headers=admin)
    assert bad.status_code == 404
    assert "no precomputed list set 'nope'" in bad.text and "'batch'" in bad.text
    empty = served.client.put("/v1/admin/slots/pre", json={"ref": "precomputed:"}, headers=admin)
    assert empty.status_code == 422 and "precomputed:NAME" in empty.text
    assert get(served, "u3").status_code == 404  # no slot "pre"


def test_ranking_through_a_precomputed_slot(served):
    write_set(served.store, "batch", {"u3": U3_LIST})
    admin = served.headers("admin")
    put = served.client.put("/v1/admin/slots/pre", json={"ref": "precomputed:batch"}, headers=admin)
    assert put.status_code == 200
    ranked = served.client.post(
        "/v1/users/u3/rank", params={"slot": "pre"}, json={"items": ["i99", "i10", "i6"]},
        headers=admin,
    )  # fmt: skip
    assert ranked.status_code == 200, ranked.text
    body = ranked.json()
    assert [i["item_id"] for i in body["items"]] == ["i6", "i10", "i99"]  # stored scores order
    assert body["items"][2]["score"] is None  # not in the stored list: ranked last, no score
