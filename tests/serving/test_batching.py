"""Micro-batching: requests scored together get the lists they would have got alone."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recstack.serving.engine.batch import PrefetchedTops, batches_well
from recstack.serving.engine.core import Engine

FILTER = {"difficulty": {"in": [0, 1]}}
USERS = [f"u{j}" for j in range(0, 60, 3)]


@pytest.fixture(scope="module")
def two_stage_model(planted_ds):
    pytest.importorskip("lightgbm")
    from recstack.models.ranking.two_stage import TwoStageRecommender

    model = TwoStageRecommender(
        retrievers="ease,itemknn,popularity", candidates=30, rounds=30, folds=1, bags=1
    )
    return model.fit(planted_ds)


@pytest.fixture
def engine(planted_ds, two_stage_model) -> Engine:
    return Engine.from_dataset(planted_ds, two_stage_model)


def lists(engine: Engine, users: list[str], **options) -> list[list[tuple[str, float]]]:
    return [
        [(item.item_id, item.score) for item in engine.recommend(u, 10, **options).items]
        for u in users
    ]


def assert_same(got: list, want: list) -> None:
    for g, w in zip(got, want, strict=True):
        assert [i for i, _ in g] == [i for i, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-5)


def test_only_models_that_ask_for_it_are_batched(engine, als_model):
    assert batches_well(engine.model) and engine.batches()
    assert not batches_well(als_model) and not batches_well(None)


def test_prefetched_lists_equal_the_lists_scored_one_by_one(engine):
    for options in ({}, {"filter": FILTER}):
        alone = lists(engine, USERS, **options)
        scored = engine.prefetch([*USERS, USERS[0]], 10, options.get("filter"), None)
        assert scored == len(USERS)  # each user once
        assert len(engine._prefetched) == len(USERS)
        assert_same(lists(engine, USERS, **options), alone)
        assert len(engine._prefetched) == 0  # every list taken once


def test_a_prefetched_list_is_not_served_to_another_request_or_after_an_event(engine):
    user = USERS[1]
    engine.prefetch(USERS, 10, FILTER, None)
    plain = engine.recommend(user, 10)  # no filter: scores alone, the filtered list is dropped
    assert len(engine._prefetched) == len(USERS) - 1
    assert_same(lists(engine, [user]), [[(i.item_id, i.score) for i in plain.items]])
    engine.prefetch(USERS, 10, None, None)
    top = engine._prefetched._tops[user].positions[0]
    best = engine.catalogue.ids.ids[top]  # the prefetched list's first item
    engine.apply_events([user], [best], ["complete"], [None])
    after = lists(engine, [user])  # the history changed: scored again, without that item
    assert best not in [i for i, _ in after[0]]
    assert_same(after, lists(engine, [user]))


def test_prefetch_scores_nothing_for_one_user_or_cold_users(engine):
    assert engine.prefetch([USERS[0]], 10, None, None) == 0
    assert engine.prefetch(["nobody", "stranger"], 10, None, None) == 0
    assert len(engine._prefetched) == 0


def test_prefetched_tops_forget_when_full():
    from recstack.serving.engine import batch

    tops = PrefetchedTops()
    top = batch.Prefetched(None, 1, 10, "{}", np.arange(3), np.zeros(3))  # type: ignore[arg-type]
    for j in range(batch.MAX_PREFETCHED):
        tops.put(f"u{j}", top)
    tops.put("last", top)
    assert len(tops) == 1 and tops.take("last", None, 1, 10, "{}") is not None  # type: ignore[arg-type]


def metric(text: str, name: str) -> float:
    """A counter's value in ``/metrics`` text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def batched_lists(served) -> float:
    return metric(served.client.get("/metrics").text, "recstack_batched_lists_total")


def test_concurrent_requests_through_the_app_are_scored_in_one_call(serve, two_stage_model):
    with serve(two_stage_model, cache_ttl_seconds=0) as served:
        params = {"k": 10, "filter": '{"difficulty": {"in": [0, 1]}}'}
        alone = [served.recommend(u, **params)["items"] for u in USERS]
        assert batched_lists(served) == 0  # one request at a time: never batched

        async def together() -> list[dict]:
            transport = httpx.ASGITransport(app=served.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = await asyncio.gather(
                    *(
                        client.get(
                            f"/v1/users/{u}/recommendations",
                            params=params,
                            headers=served.headers(),
                        )
                        for u in USERS
                    )
                )
            assert all(r.status_code == 200 for r in responses)
            return [r.json()["items"] for r in responses]

        batched = asyncio.run(together())
        assert batched_lists(served) >= 2
        for got, want in zip(batched, alone, strict=True):
            assert [i["item_id"] for i in got] == [i["item_id"] for i in want]
            np.testing.assert_allclose(
                [i["score"] for i in got], [i["score"] for i in want], rtol=1e-5
            )


def test_a_filter_the_catalogue_cannot_apply_fails_each_request_alone(
    serve, two_stage_model, caplog
):
    with serve(two_stage_model, cache_ttl_seconds=0) as served:
        bad = {"filter": '{"genres": {"gt": 3}}'}  # genres are strings: no number to compare

        async def together() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=served.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await asyncio.gather(
                    *(
                        client.get(
                            f"/v1/users/{u}/recommendations", params=bad, headers=served.headers()
                        )
                        for u in USERS[:5]
                    )
                )

        with caplog.at_level("ERROR", logger="recstack.serving"):
            responses = asyncio.run(together())
        assert [r.status_code for r in responses] == [422] * 5
        assert all("genres" in r.json()["error"]["message"] for r in responses)
        assert not [r for r in caplog.records if "batched scoring failed" in r.getMessage()]
        assert batched_lists(served) == 0


def test_users_in_an_experiment_arm_are_batched_on_their_arms_slot(
    tmp_path, planted, fill, two_stage_model
):
    from fastapi.testclient import TestClient

    from recstack.registry import ModelRegistry
    from recstack.serving.api.app import create_app
    from recstack.settings import Settings
    from recstack.store import Store

    settings = Settings(home=tmp_path / "home", cache_ttl_seconds=0)
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill(store, planted)
    registry = ModelRegistry(settings)
    version = registry.log_model(two_stage_model)
    registry.promote(settings.model_name, version.version, "champion")
    keys = {scope: store.create_api_key(scope, scope)[0] for scope in ("read", "admin")}
    store.close()
    headers = {scope: {"Authorization": f"Bearer {key}"} for scope, key in keys.items()}
    arms = [
        {"name": "control", "model": "champion", "weight": 0.5},
        {"name": "pop", "model": "popularity", "weight": 0.5},
    ]
    with TestClient(create_app(settings)) as client:
        admin = headers["admin"]
        created = client.post("/v1/experiments", json={"key": "bx", "arms": arms}, headers=admin)
        assert created.status_code == 201, created.text
        assert client.post("/v1/experiments/bx/start", headers=admin).is_success
        app = client.app

        async def together() -> list[dict]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                responses = await asyncio.gather(
                    *(
                        http.get(f"/v1/users/{u}/recommendations", headers=headers["read"])
                        for u in USERS
                    )
                )
            return [r.json() for r in responses]

        batched = asyncio.run(together())
        arms_of = {u: body["experiment"]["arm"] for u, body in zip(USERS, batched, strict=True)}
        control = [u for u in USERS if arms_of[u] == "control"]
        assert 2 <= len(control) < len(USERS)
        counted = client.get("/metrics").text
        assert metric(counted, "recstack_batched_lists_total") == len(control)  # not "pop"
        for user, body in zip(USERS, batched, strict=True):
            alone = client.get(f"/v1/users/{user}/recommendations", headers=headers["read"])
            assert alone.json()["experiment"] == body["experiment"]
            assert [i["item_id"] for i in body["items"]] == [
                i["item_id"] for i in alone.json()["items"]
            ]
