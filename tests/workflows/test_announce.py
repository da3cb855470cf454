"""A promotion made in another process reaches every worker listening on Redis."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from recstack.data.loaders import LoadedData
from recstack.registry.mlflow_registry import ModelRegistry
from recstack.serving.api.app import create_app
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.scenarios import World, window_frame
from recstack.workflows.announce import announce_reload
from recstack.workflows.train import train_and_register

pytestmark = pytest.mark.redis


def test_announced_reload_reaches_every_worker(tmp_path, redis_url, redis_prefix) -> None:
    settings = Settings(home=tmp_path / "home", redis_url=redis_url)
    settings.ensure_home()
    world = World(n_users=60, n_items=40, n_new_items=0)
    with Store.from_settings(settings) as store:
        frame = window_frame(world, start=1_700_000_000, seed=1, events_per_user=8)
        store.ingest(LoadedData(interactions=frame, items=world.items_frame(), source="t"))
    train_and_register(settings, "popularity", evaluate=False, promote="champion")
    train_and_register(settings, "als", {"factors": 4, "iterations": 3}, evaluate=False)
    apps = [create_app(settings, key_prefix=redis_prefix) for _ in range(2)]
    with TestClient(apps[0]), TestClient(apps[1]):
        states = [app.state.recstack for app in apps]
        assert [s.engine.model_info.version for s in states] == [1, 1]
        ModelRegistry(settings).promote(settings.model_name, 2, "champion")
        said = announce_reload(settings, key_prefix=redis_prefix)
        assert said == "reload announced over Redis to 2 listening worker(s)"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if [s.engine.model_info.version for s in states] == [2, 2]:
                break
            time.sleep(0.2)
        assert [s.engine.model_info.version for s in states] == [2, 2]


def test_without_redis_the_announcement_says_what_to_do(tmp_path) -> None:
    said = announce_reload(Settings(home=tmp_path / "home"))
    assert said.startswith("not announced: no RECSTACK_REDIS_URL")
