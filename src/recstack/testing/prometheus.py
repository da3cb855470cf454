"""Test support for the Prometheus deploy tests: the Debian binaries and a home with data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recstack.data.loaders import LoadedData
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.data import planted_frame


def prometheus_binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; skips the calling test when it is missing."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install prometheus)")
    return found


def planted_home(home: Path) -> Path:
    """``home`` with a SQLite store holding planted interactions (60 users, 40 items)."""
    settings = Settings(home=home)
    settings.ensure_home()
    inter, items = planted_frame(n_users=60, n_items=40, per_user=8)
    with Store.from_settings(settings) as store:
        store.ingest(LoadedData(interactions=inter, items=items, source="planted"))
    return home
