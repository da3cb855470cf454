"""A worker's load: the registered alias read without MLflow, HNSW graphs saved once and mapped
by every later load, and a reload that follows the alias."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.serving.api.app import create_app
from recstack.serving.runtime.image import delete_images, graphs_root, images_root
from recstack.serving.runtime.loader import load_engine
from recstack.settings import Settings
from recstack.store import Store


@pytest.fixture
def registered(tmp_path, planted, fill, planted_ds):
    """A home with two registered ALS versions, the first the champion; 120 items served by
    an HNSW graph (threshold 50)."""
    settings = Settings(home=tmp_path / "home", ann_threshold_items=50)
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill(store, planted)
    registry = ModelRegistry(settings)
    for seed in (0, 1):
        model = create_model("als", factors=6, iterations=5, random_state=seed).fit(planted_ds)
        registry.log_model(model)
    registry.promote(settings.model_name, 1, "champion")
    yield settings, store, registry
    store.close()


def graphs(settings: Settings) -> list[str]:
    root = graphs_root(settings.home)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_loads_map_the_graph_the_first_one_saved(registered):
    settings, store, _ = registered
    first, _ = load_engine(settings, store)
    assert len(graphs(settings)) == 1
    second, _ = load_engine(settings, store)
    built = first._state(None).model_search.index
    mapped = second._state(None).model_search.index
    assert not built._mapped and mapped._mapped and len(graphs(settings)) == 1
    for user in ("u0", "u7", "u42", "u199"):
        a, b = first.recommend(user, 10), second.recommend(user, 10)
        assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
        np.testing.assert_allclose([i.score for i in a.items], [i.score for i in b.items])
    delete_images(settings.home)  # a purge: the histories go, the item graphs stay
    assert [p.name for p in images_root(settings.home).iterdir() if p.is_dir()] == ["hnsw"]
    assert len(graphs(settings)) == 1


def test_a_reload_follows_the_alias_to_the_new_version(registered):
    settings, store, registry = registered
    keys = {s: store.create_api_key(s, s)[0] for s in ("read", "admin")}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with TestClient(create_app(settings)) as client:
        path = "/v1/users/u3/recommendations?k=5"
        assert client.get(path, headers=admin).json()["model"]["version"] == 1
        registry.promote(settings.model_name, 2, "champion")
        assert client.post("/v1/admin/reload", headers=admin).status_code == 200
        assert client.get(path, headers=admin).json()["model"]["version"] == 2
        assert client.get("/readyz").json()["model"]["version"] == 2
    assert len(graphs(settings)) == 2  # one per model version


def test_a_worker_load_does_not_import_mlflow(registered):
    settings, _, _ = registered
    code = (
        "import sys\n"
        "from recstack.serving.runtime.loader import load_engine\n"
        "from recstack.settings import Settings\n"
        "from recstack.store import Store\n"
        f"settings = Settings(home={str(settings.home)!r}, ann_threshold_items=50)\n"
        "engine, report = load_engine(settings, Store.from_settings(settings))\n"
        "print(engine.model_info.version, 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "False"]


def test_a_worker_on_a_store_serve_migrated_skips_the_migration_check(registered):
    settings, _, _ = registered
    code = (
        "import os, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from recstack.serving.api.app import create_app\n"
        "from recstack.serving.runtime.supervisor import STORE_CHECKED_ENV\n"
        "from recstack.settings import Settings\n"
        f"settings = Settings(home={str(settings.home)!r}, ann_threshold_items=50)\n"
        "os.environ[STORE_CHECKED_ENV] = settings.store_url\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    body = client.get('/readyz').json()\n"
        "print(body['ready'], body['model']['version'], 'alembic' in sys.modules,"
        " 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "1", "False", "False"]
