"""A store with planted data (SQLite) and one MLflow backend per test module."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recstack.data.loaders import LoadedData
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.data import planted_frame


def _fill_store(settings: Settings, **sizes: int) -> None:
    inter, items = planted_frame(**sizes)
    Store.from_settings(settings).ingest(LoadedData(inter, items=items, source="planted"))


@pytest.fixture
def fill_store() -> Callable[..., None]:
    """``fill_store(settings, n_users=, n_items=, per_user=)`` ingests planted data."""
    return _fill_store


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    """A home with planted data in the SQLite store and one MLflow backend for the module."""
    s = Settings(home=tmp_path_factory.mktemp("pipeline") / "home", model_name="courses")
    _fill_store(s, n_users=120, n_items=60, per_user=10)
    return s
