"""Model slots: several models served at once over one catalogue and one history store."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recstack.data.dataset import Dataset
from recstack.errors import NotFoundError
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.serving.api.app import create_app
from recstack.serving.engine import Engine, ModelInfo
from recstack.settings import Settings


@pytest.fixture(scope="module")
def shifted_model(planted):
    """An ALS model that never saw items i0..i9 and knows the others in another order."""
    inter, items = planted
    inter = inter[~inter["item_id"].isin([f"i{n}" for n in range(10)])]
    inter = inter.iloc[::-1].reset_index(drop=True)
    dataset = Dataset.from_frame(inter, items=items[items["item_id"].isin(inter["item_id"])])
    return create_model("als", factors=4, iterations=10, random_state=1).fit(dataset)


def test_a_slot_with_other_items_scores_through_the_shared_catalogue(
    planted_ds, als_model, shifted_model
):
    engine = Engine.from_dataset(planted_ds, als_model, model_info=ModelInfo("als", 1, "r"))
    assert engine.n_items == 120
    engine.set_slot("challenger", shifted_model, ModelInfo("als", 2, "r"))
    assert list(engine.slots) == ["champion", "challenger"]
    assert engine.slot_info("challenger").version == 2
    assert engine.items.positions.aligned
    assert not engine._state("challenger").positions.aligned  # a real mapping
    unseen = {f"i{n}" for n in range(10)}
    for user in ("u3", "u50", "u199"):
        champion = engine.recommend(user, 10)
        challenger = engine.recommend(user, 10, slot="challenger")
        seen = {item for item, _ in engine.history(user)}
        ids = [i.item_id for i in challenger.items]
        assert len(ids) == 10 and not set(ids) & seen
        assert all(0 <= int(i[1:]) < 120 for i in ids)
        # the challenger scores its own items by its own vectors: the same ranking as the model
        warm = [i for i in ids if i not in unseen]
        model_idx = shifted_model.items.indices(warm)
        vector = shifted_model.user_vectors(
            shifted_model_history(engine, shifted_model, user),
            np.array([shifted_model.users.index(user)]),
        )[0]
        scores = shifted_model.item_vectors()[model_idx] @ vector
        assert np.all(np.diff(scores) <= 1e-5)
        assert [i.item_id for i in champion.items] != ids or user == "u199"
    similar, source = engine.similar("i30", 5, slot="challenger")
    assert source == "model" and "i30" not in [s.item_id for s in similar]
    similar_unseen, _ = engine.similar("i3", 5, slot="challenger")  # unknown to that model
    assert len(similar_unseen) == 5
    explained = engine.recommend("u3", 3, explain=True, slot="challenger")
    for item in explained.items:
        assert item.explanation is not None
        assert all(e["item_id"] in {i for i, _ in engine.history("u3")} for e in item.explanation)
    # an item upsert reaches every slot; the new item is cold for both models
    engine.upsert_item("brand-new", title="New", text=None, attributes={}, active=True)
    assert engine._state("challenger").catalogue is engine.catalogue
    assert engine._state("challenger").positions.model_index(engine.n_items - 1) == -1
    engine.drop_slot("challenger")
    with pytest.raises(NotFoundError, match="challenger"):
        engine.recommend("u3", 5, slot="challenger")


def shifted_model_history(engine, model, user):
    import scipy.sparse as sp

    items, weights = engine.histories.row(user)
    ids = engine.catalogue.ids.externals(items)
    idx = model.items.indices(ids)
    keep = idx >= 0
    return sp.csr_matrix(
        (weights[keep], idx[keep], [0, int(keep.sum())]), shape=(1, len(model.items))
    )


@pytest.fixture
def registered(tmp_path, planted, planted_ds):
    """A home with three registered versions: 1 ALS (champion), 2 item-kNN (challenger), 3 ALS."""
    from tests.serving.conftest import champion_challenger_home

    settings, headers = champion_challenger_home(
        tmp_path / "home",
        planted,
        planted_ds,
        ("read", "admin"),
        serving_slots=["challenger"],
        cache_ttl_seconds=Settings.model_fields["cache_ttl_seconds"].default,
    )
    registry = ModelRegistry(settings)
    registry.log_model(create_model("als", factors=6, iterations=5, random_state=3).fit(planted_ds))
    return settings, headers


def test_two_slots_serve_two_versions_and_one_reloads_without_a_failed_request(registered):
    settings, headers = registered
    admin, read = headers["admin"], headers["read"]
    with TestClient(create_app(settings)) as client:
        slots = client.get("/v1/admin/models", headers=admin).json()["slots"]
        assert [(s["name"], s["model"]["version"], s["primary"]) for s in slots] == [
            ("champion", 1, True),
            ("challenger", 2, False),
        ]
        path = "/v1/users/u3/recommendations?k=5"
        assert client.get(path, headers=admin).json()["model"]["version"] == 1
        body = client.get(path + "&slot=challenger", headers=admin).json()
        assert body["model"] == {"name": "itemknn", "version": 2, "registered_name": "recstack"}
        post = client.post(path.split("?")[0], json={"slot": "challenger"}, headers=admin)
        assert post.json()["model"]["version"] == 2
        assert client.get(path + "&slot=challenger", headers=read).status_code == 403
        missing = client.get(path + "&slot=nope", headers=admin)
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        similar = client.get("/v1/items/i5/similar?k=3&slot=challenger", headers=admin).json()
        assert similar["model"]["version"] == 2

        seen: dict[str, set[int]] = {"champion": set(), "challenger": set()}
        failures: list[tuple[str, int]] = []
        stop = threading.Event()
        count = [0]

        def hammer(slot: str) -> None:
            query = "" if slot == "champion" else "&slot=challenger"
            while not stop.is_set():
                response = client.get(path + query, headers=admin)
                if response.status_code != 200:
                    failures.append((slot, response.status_code))
                else:
                    seen[slot].add(response.json()["model"]["version"])
                count[0] += 1

        threads = [threading.Thread(target=hammer, args=(s,)) for s in seen for _ in range(2)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 30
            while count[0] < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            loaded = client.put("/v1/admin/slots/challenger", json={"ref": "3"}, headers=admin)
            before = count[0]
            while count[0] < before + 20 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["model"]["version"] == 3 and loaded.json()["ref"] == "3"
        assert failures == []
        assert seen["champion"] == {1}  # the other slot never changed
        assert seen["challenger"] == {2, 3}
        assert client.get(path + "&slot=challenger", headers=admin).json()["model"]["version"] == 3

        bad = client.put("/v1/admin/slots/other", json={"ref": "99"}, headers=admin)
        assert bad.status_code == 404
        assert client.delete("/v1/admin/slots/champion", headers=admin).status_code == 422
        assert client.delete("/v1/admin/slots/challenger", headers=admin).status_code == 204
        assert client.get(path + "&slot=challenger", headers=admin).status_code == 404
