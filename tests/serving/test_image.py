"""Serving images: histories written once per model version, mapped by every load, with the
events stored since applied on top, and gone after a purge."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.data.idmap import IdMap
from recstack.serving.engine import ModelInfo
from recstack.serving.runtime import image as image_module
from recstack.serving.runtime.image import delete_images, images_root, open_image
from recstack.serving.runtime.loader import load_engine
from recstack.settings import Settings
from recstack.store import Store


@pytest.fixture
def home(tmp_path, planted, fill):
    settings = Settings(home=tmp_path / "home")
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill(store, planted)
    yield settings, store
    store.close()


def test_an_image_is_written_once_and_mapped_after(home, als_model):
    settings, store = home
    info = ModelInfo("als", 1, "recstack")
    first = open_image(settings.home, store, als_model.items, info, settings.weighting(), None)
    second = open_image(settings.home, store, als_model.items, info, settings.weighting(), None)
    assert first.built and not second.built and first.key == second.key
    for array in (second.snapshot.matrix.data, second.snapshot.matrix.indices):
        assert not array.flags.writeable and not array.flags.owndata  # the mapped file's pages
    assert len(first.delta) == len(second.delta) == 0
    reference = store.snapshot(settings.weighting())
    # the image's rows are the store's histories, in the model's item order
    ids = second.snapshot.item_ids
    for user in ("u0", "u17", "u199"):
        row = second.snapshot.matrix.getrow(second.snapshot.users.index(user))
        got = dict(zip(ids.externals(row.indices), row.data.tolist(), strict=True))
        ref = reference.matrix.getrow(reference.users.index(user))
        expected = dict(zip(reference.items.externals(ref.indices), ref.data.tolist(), strict=True))
        assert got == pytest.approx(expected)
    other = ModelInfo("als", 2, "recstack")
    third = open_image(settings.home, store, als_model.items, other, settings.weighting(), None)
    assert third.built and third.key != first.key  # one image per model version


def test_events_after_the_image_are_applied_on_load(home, als_model):
    settings, store = home
    info = ModelInfo("als", 1, "recstack")
    open_image(settings.home, store, als_model.items, info, settings.weighting(), None)
    store.add_events([("late-1", "u3", "i7", "purchase", None, 1_700_000_000, None)])
    store.add_events([("late-2", "newcomer", "i9", "view", None, 1_700_000_000, None)])
    opened = open_image(settings.home, store, als_model.items, info, settings.weighting(), None)
    assert not opened.built
    assert opened.delta[["user_id", "item_id"]].values.tolist() == [
        ["u3", "i7"],
        ["newcomer", "i9"],
    ]


def test_load_engine_serves_image_plus_delta_and_a_purge_removes_images(home, monkeypatch):
    settings, store = home
    engine, report = load_engine(settings, store)  # no model registered: popularity
    assert any("written" in note for note in report.notes)
    before = dict(engine.history("u3"))
    store.add_events([("late-1", "u3", "i7", "view", None, 1_700_000_000, None)])
    engine, report = load_engine(settings, store)
    assert any("mapped" in note for note in report.notes)
    assert dict(engine.history("u3"))["i7"] == pytest.approx(before.get("i7", 0.0) + 1.0)
    store.delete_user("u3")
    delete_images(settings.home)
    assert not any(p.is_dir() for p in images_root(settings.home).iterdir())
    engine, report = load_engine(settings, store)
    assert any("written" in note for note in report.notes)
    assert engine.history("u3") == []
    # a purge the images did not hear of (another process) is caught by the user count
    store.delete_user("u4")
    engine, report = load_engine(settings, store)
    assert any("written" in note for note in report.notes) and engine.history("u4") == []
    # too many events since the image: a new one is written
    monkeypatch.setattr(image_module, "MAX_DELTA", 1)
    store.add_events([(f"more-{i}", "u5", f"i{i}", "view", None, 1_700_000_000, None)
                      for i in range(3)])  # fmt: skip
    engine, report = load_engine(settings, store)
    assert any("written" in note for note in report.notes)


def test_an_engine_on_an_image_serves_what_one_on_a_snapshot_serves(home, als_model):
    from recstack.serving.engine import Engine

    settings, store = home
    info = ModelInfo("als", 1, "recstack")
    opened = open_image(
        settings.home, store, als_model.items, info, settings.weighting(), None, als_model.users
    )
    mapped = Engine.from_snapshot(opened.snapshot, als_model, model_info=info)
    direct = Engine.from_dataset(store.snapshot(settings.weighting()), als_model, model_info=info)
    assert mapped.items.model_users is mapped.histories.rows  # one user dict, not two
    assert mapped.histories.users.ids[0] is als_model.users.ids[0]  # the model's own strings
    for user in ("u0", "u42", "u199", "nobody"):
        a, b = mapped.recommend(user, 10), direct.recommend(user, 10)
        assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
        assert a.cold_start == b.cold_start
        assert dict(mapped.history(user)) == pytest.approx(dict(direct.history(user)))
    assert np.array_equal(mapped.histories.popularity(120), direct.histories.popularity(120))


def test_an_image_with_a_long_delta_is_extended_to_what_a_rewrite_holds(
    home, als_model, monkeypatch
):
    settings, store = home
    info, weighting = ModelInfo("als", 1, "recstack"), settings.weighting()
    open_image(settings.home, store, als_model.items, info, weighting, None, als_model.users)
    monkeypatch.setattr(image_module, "MAX_DELTA", 2)
    store.add_events(
        [
            ("late-1", "u3", "i7", "purchase", None, 1_700_000_000, None),
            ("late-2", "u3", "i7", "view", None, 1_700_000_001, None),  # the same pair again
            ("late-3", "newcomer", "i9", "view", None, 1_700_000_002, None),
            ("late-4", "newcomer", "brand-new", "complete", None, 1_700_000_003, None),
        ],
        create_items=True,
    )
    write = image_module._write
    monkeypatch.setattr(image_module, "_write", None)  # extending must not read every event
    extended = open_image(
        settings.home, store, als_model.items, info, weighting, None, als_model.users
    )
    assert extended.built and len(extended.delta) == 0  # the delta went into the arrays
    monkeypatch.setattr(image_module, "_write", write)
    delete_images(settings.home)
    rewritten = open_image(
        settings.home, store, als_model.items, info, weighting, None, als_model.users
    )
    assert rewritten.built

    got, expected = _rows(extended), _rows(rewritten)
    assert got.keys() == expected.keys()
    for user in got:
        assert got[user] == pytest.approx(expected[user])
    assert got["newcomer"] == {"i9": 1.0, "brand-new": 4.0}
    assert set(rewritten.snapshot.item_ids.ids) <= set(extended.snapshot.item_ids.ids)
    assert (
        extended.snapshot.users.ids[: len(als_model.users)].tolist() == als_model.users.ids.tolist()
    )


def _rows(image, users=("u0", "u3", "u17", "newcomer")):
    """Some users' rows of an image as {item id: weight}."""
    snap = image.snapshot
    out = {}
    for user in users:
        row = snap.matrix.getrow(snap.users.index(user))
        out[user] = dict(zip(snap.item_ids.externals(row.indices), row.data.tolist(), strict=True))
    return out


def test_a_new_versions_image_is_derived_from_the_last_one_and_holds_what_a_rewrite_holds(
    home, als_model, monkeypatch
):
    settings, store = home
    weighting = settings.weighting()
    first = ModelInfo("als", 1, "recstack")
    open_image(settings.home, store, als_model.items, first, weighting, None, als_model.users)
    store.add_events(
        [
            ("late-1", "u3", "i7", "purchase", None, 1_700_000_000, None),
            ("late-2", "newcomer", "brand-new", "complete", None, 1_700_000_001, None),
        ],
        create_items=True,
    )
    monkeypatch.setattr(image_module, "MAX_DELTA", 1)  # the derived image is extended too
    # the next version orders users and items differently and knows an item the store lacks
    items = IdMap(["unseen", *als_model.items.ids[::-1].tolist()])
    users = IdMap(als_model.users.ids[::-1].tolist())
    second = ModelInfo("als", 2, "recstack")
    write = image_module._write
    monkeypatch.setattr(image_module, "_write", None)  # deriving must not read every event
    derived = open_image(settings.home, store, items, second, weighting, None, users)
    assert derived.built and len(derived.delta) == 0
    assert derived.snapshot.users.ids[: len(users)].tolist() == users.ids.tolist()
    assert derived.snapshot.item_ids.ids[: len(items)].tolist() == items.ids.tolist()
    assert derived.snapshot.matrix.has_sorted_indices
    monkeypatch.setattr(image_module, "_write", write)
    delete_images(settings.home)
    rewritten = open_image(settings.home, store, items, second, weighting, None, users)
    every_user = tuple(rewritten.snapshot.users.ids.tolist())
    got, expected = _rows(derived, every_user), _rows(rewritten, every_user)
    assert got.keys() == expected.keys()
    for user in got:
        assert got[user] == pytest.approx(expected[user]), user
    assert got["newcomer"] == {"brand-new": 4.0}
    assert derived.snapshot.matrix.nnz == rewritten.snapshot.matrix.nnz


def test_an_image_of_another_weighting_is_not_a_source(home, als_model, monkeypatch):
    settings, store = home
    open_image(
        settings.home,
        store,
        als_model.items,
        ModelInfo("als", 1, "recstack"),
        settings.weighting(),
        None,
        als_model.users,
    )
    other = Settings(home=settings.home, event_weights={"view": 2.0}).weighting()
    monkeypatch.setattr(image_module, "_derive", None)  # must be written from the store
    image = open_image(
        settings.home,
        store,
        als_model.items,
        ModelInfo("als", 2, "recstack"),
        other,
        None,
        als_model.users,
    )
    assert image.built


def test_only_the_latest_images_are_kept(home, als_model, monkeypatch):
    settings, store = home
    monkeypatch.setattr(image_module, "KEEP", 2)
    for version in range(1, 5):
        info = ModelInfo("als", version, "recstack")
        image = open_image(
            settings.home,
            store,
            als_model.items,
            info,
            settings.weighting(),
            None,
            als_model.users,
        )
        assert image.built
    kept = {
        p.name
        for p in images_root(settings.home).iterdir()
        if p.name != image_module.GRAPHS_DIR and p.is_dir()
    }
    assert len(kept) == 2 and image.key in kept
    # the newest stays the source of the next version's image
    monkeypatch.setattr(image_module, "_write", None)
    info = ModelInfo("als", 5, "recstack")
    open_image(
        settings.home, store, als_model.items, info, settings.weighting(), None, als_model.users
    )


def test_training_writes_the_served_versions_image_and_graph_and_the_first_start_maps_them(
    home, monkeypatch
):
    from recstack.index.faiss_index import FaissHNSWIndex
    from recstack.serving.runtime.loader import serving_preparation
    from recstack.workflows.train import train_and_register

    settings, store = home
    settings = settings.with_overrides(ann_threshold_items=10)  # an HNSW graph over the items
    params = {"factors": 8, "iterations": 2, "random_state": 1}
    prepare = serving_preparation(settings)
    train_and_register(
        settings, "als", params, evaluate=False, promote="b", prepare_serving=prepare
    )
    assert not images_root(settings.home).exists()  # not the served alias: nothing written
    train_and_register(
        settings, "als", params, evaluate=False, promote="champion", prepare_serving=prepare
    )
    assert len(list(image_module.graphs_root(settings.home).glob("*/index.faiss"))) == 1
    store.add_events([("late-1", "u3", "i7", "purchase", None, 1_700_000_000, None)])
    monkeypatch.setattr(image_module, "_write", None)  # the start must not read every event
    monkeypatch.setattr(image_module, "_derive", None)
    monkeypatch.setattr(FaissHNSWIndex, "build", None)  # nor build a graph
    engine, report = load_engine(settings, store)
    assert any("mapped" in note for note in report.notes), report.notes
    assert engine.recommend("u0", k=5).items  # served through the mapped graph
    reference = store.snapshot(settings.weighting())  # the late event included
    for user in ("u0", "u3", "u199"):
        ref = reference.matrix.getrow(reference.users.index(user))
        expected = dict(zip(reference.items.externals(ref.indices), ref.data.tolist(), strict=True))
        assert dict(engine.history(user)) == pytest.approx(expected), user
