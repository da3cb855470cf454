"""Fixtures for the serving tests: a store with planted data, fitted models, a live app.

``serve`` builds the whole stack the way production does — a real Store (SQLite by default,
PostgreSQL through ``store_url``), the engine from the store's snapshot and a fitted model,
the FastAPI app, real API keys — and yields a ``Served`` with a TestClient and a header per
scope. Models are fitted once per session; stores are fresh per use so tests never see each
other's writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recstack.data.dataset import Dataset
from recstack.data.loaders import LoadedData
from recstack.models.catalog import create_model
from recstack.serving.api.app import create_app
from recstack.serving.engine.core import Engine, ModelInfo
from recstack.serving.engine.vectors import VectorBackend
from recstack.serving.runtime.loader import event_weighting
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.data import planted_frame


@dataclass
class Served:
    """A running app and what it was built from."""

    client: TestClient
    app: Any
    store: Store
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, scope: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    @property
    def state(self) -> Any:
        return self.app.state.recstack

    @property
    def engine(self) -> Engine:
        return self.state.engine

    def recommend(self, user_id: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/users/{user_id}/recommendations", params=params, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Planted interactions (200 users x 120 items, 4 topics) and the item catalogue."""
    return planted_frame()


@pytest.fixture(scope="session")
def planted_ds(planted) -> Dataset:
    inter, items = planted
    return Dataset.from_frame(inter, items=items)


@pytest.fixture(scope="session")
def als_model(planted_ds):
    return create_model("als", factors=4, iterations=10, random_state=0).fit(planted_ds)


def fill_store(store: Store, planted: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    inter, items = planted
    store.ingest(LoadedData(interactions=inter, items=items, source="planted"))


def champion_challenger_home(
    home: Path,
    planted: tuple[pd.DataFrame, pd.DataFrame],
    planted_ds: Dataset,
    scopes: tuple[str, ...],
    *,
    content: bool = False,
    **overrides: Any,
) -> tuple[Settings, dict[str, dict[str, str]]]:
    """A home with planted data and two registered versions, 1 ALS (champion) and 2 item-kNN
    (challenger), plus a content model for search when ``content``; a header per key scope.
    ``overrides`` are settings (no rate limit and no response cache unless given)."""
    from recstack.registry import ModelRegistry
    from recstack.serving.runtime.loader import CONTENT_SUFFIX

    fields = {"rate_limit_per_minute": 1_000_000, "cache_ttl_seconds": 0, **overrides}
    settings = Settings(home=home, **fields)
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill_store(store, planted)
    registry = ModelRegistry(settings)
    v1 = registry.log_model(create_model("als", factors=4, iterations=5).fit(planted_ds))
    registry.promote(settings.model_name, v1.version, "champion")
    v2 = registry.log_model(create_model("itemknn").fit(planted_ds))
    registry.promote(settings.model_name, v2.version, "challenger")
    if content:
        content_name = settings.model_name + CONTENT_SUFFIX
        vc = registry.log_model(create_model("content").fit(planted_ds), name=content_name)
        registry.promote(content_name, vc.version, settings.serving_alias)
    keys = {s: store.create_api_key(s, s)[0] for s in scopes}
    store.close()
    return settings, {s: {"Authorization": f"Bearer {k}"} for s, k in keys.items()}


@pytest.fixture(scope="session")
def fill() -> Callable[[Store, tuple[pd.DataFrame, pd.DataFrame]], None]:
    """The function that ingests planted data into a store."""
    return fill_store


@pytest.fixture
def serve(tmp_path: Path, planted) -> Iterator[Callable[..., Any]]:
    """``serve(model=..., content=..., store_url=..., **settings)`` -> context manager of Served."""

    @contextmanager
    def build(
        model: Any = None,
        *,
        content: Any = None,
        store_url: str | None = None,
        key_prefix: str = "recstack:",
        version: int | None = 1,
        **overrides: Any,
    ) -> Iterator[Served]:
        home = tmp_path / f"home{len(list(tmp_path.iterdir()))}"
        url = store_url or f"sqlite:///{home / 'store.db'}"
        settings = Settings(home=home, database_url=url, **overrides)
        settings.ensure_home()
        store = Store.from_settings(settings)
        fill_store(store, planted)
        dataset = store.snapshot(event_weighting(settings))
        info = ModelInfo(model.name, version, settings.model_name) if model is not None else None
        engine = Engine.from_dataset(
            dataset,
            model,
            content=content,
            model_info=info,
            weighting=event_weighting(settings),
            ann_threshold=VectorBackend.of(settings),
        )
        keys = {
            scope: store.create_api_key(scope, f"test-{scope}")[0]
            for scope in ("read", "write", "admin")
        }
        app = create_app(settings, engine, store, key_prefix=key_prefix)
        with TestClient(app) as client:
            yield Served(client, app, store, settings, keys)
        store.close()

    yield build


@pytest.fixture
def second_worker() -> Callable[..., Any]:
    """``second_worker(served, model)`` -> context manager of ``(client, engine)``: another app
    on the same store and settings, as a second ``recstack serve`` worker would be."""

    @contextmanager
    def build(served: Served, model: Any, key_prefix: str = "recstack:") -> Iterator[Any]:
        dataset = served.store.snapshot(event_weighting(served.settings))
        engine = Engine.from_dataset(
            dataset,
            model,
            model_info=ModelInfo(model.name, 1, served.settings.model_name),
            weighting=event_weighting(served.settings),
        )
        app = create_app(served.settings, engine, served.store, key_prefix=key_prefix)
        with TestClient(app) as client:
            yield client, engine

    return build
