"""Fixtures for the dashboard tests: the whole app (serving + ``/ui``) over a planted store.

``dash`` builds what ``recstack serve`` runs — a real Store, an engine with a fitted model, the
app from ``recstack.app.create_app`` — and real API keys per scope.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recstack.app import create_app
from recstack.data.dataset import Dataset
from recstack.data.loaders import LoadedData
from recstack.models.catalog import create_model
from recstack.serving.engine.core import Engine, ModelInfo
from recstack.serving.runtime.loader import event_weighting
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.data import planted_frame

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Dash:
    client: TestClient
    app: Any
    store: Store
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def login(self, scope: str = "admin") -> str:
        """Log in with the key of ``scope``; returns the session's CSRF token."""
        form = self.client.get("/ui/login")
        token = CSRF.search(form.text).group(1)
        response = self.client.post(
            "/ui/login",
            data={"key": self.keys[scope], "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return self.csrf()

    def csrf(self) -> str:
        page = self.client.get("/ui/")
        assert page.status_code == 200, page.text
        return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.fixture(scope="session")
def planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    return planted_frame()


@pytest.fixture(scope="session")
def fitted(planted):
    inter, items = planted
    dataset = Dataset.from_frame(inter, items=items)
    return create_model("als", factors=4, iterations=5, random_state=0).fit(dataset)


@pytest.fixture
def make_dash(tmp_path: Path, planted, fitted):
    """``make_dash(**settings)`` -> context manager of a ``Dash`` built with those settings."""

    @contextmanager
    def build(**overrides: Any) -> Iterator[Dash]:
        home = tmp_path / f"home{len(list(tmp_path.iterdir()))}"
        settings = Settings(home=home, database_url=None, **overrides)
        settings.ensure_home()
        store = Store.from_settings(settings)
        inter, items = planted
        store.ingest(LoadedData(interactions=inter, items=items, source="planted"))
        dataset = store.snapshot(event_weighting(settings))
        engine = Engine.from_dataset(
            dataset,
            fitted,
            model_info=ModelInfo(fitted.name, 1, settings.model_name),
            weighting=event_weighting(settings),
        )
        keys = {s: store.create_api_key(s, f"test-{s}")[0] for s in ("read", "write", "admin")}
        app = create_app(settings, engine=engine, store=store)
        with TestClient(app) as client:
            yield Dash(client, app, store, settings, keys)
        store.close()

    return build


@pytest.fixture
def dash(make_dash) -> Iterator[Dash]:
    with make_dash() as built:
        yield built


# ---- a real server for the browser tests ------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    admin_key: str
    read_key: str


def build_home(home: Path) -> tuple[Settings, str, str]:
    """A home with the planted store and a later window of events, ALS versions (the first
    promoted, a retrained challenger gated against it, one more left unpromoted), a drift
    report, a retraining decision and an evaluation report; returns the settings and an admin
    and a read key."""
    from recstack.evaluation.report import write_report
    from recstack.workflows.evaluate import evaluate_from_store
    from recstack.workflows.monitor import run_drift
    from recstack.workflows.retrain import run_retrain
    from recstack.workflows.train import train_and_register

    settings = Settings(home=home)
    settings.ensure_home()
    store = Store.from_settings(settings)
    inter, items = planted_frame()
    store.ingest(LoadedData(interactions=inter, items=items, source="planted"))
    params = {"factors": 4, "iterations": 5, "random_state": 0}
    train_and_register(settings, "als", params, evaluate=False, promote="champion")
    later, _ = planted_frame(seed=1)  # a second, later window: drift report and retrain
    later = later.assign(
        timestamp=later["timestamp"] + 30 * 86_400, event_id="later-" + later["event_id"]
    )
    store.ingest(LoadedData(interactions=later, items=items, source="planted-later"))
    report = run_drift(settings, store=store)
    run_retrain(settings, store=store, reason="drift", drift_report_id=report.id)
    train_and_register(settings, "als", {**params, "factors": 6}, evaluate=False)
    result = evaluate_from_store(settings, ["popularity", "als"], ks=(5, 10))
    write_report(result, home / "reports" / "20260101-000000")
    admin = store.create_api_key("admin", "browser-admin")[0]
    read = store.create_api_key("read", "browser-read")[0]
    store.close()
    return settings, admin, read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(home: Path) -> Iterator[LiveServer]:
    import uvicorn

    from recstack.app import create_app

    settings, admin, read = build_home(home)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not become ready")
        time.sleep(0.2)
    try:
        yield LiveServer(url, settings, admin, read)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """uvicorn serving ``recstack.app.create_app`` over a home with two registered versions."""
    with live_server(tmp_path_factory.mktemp("browser-home")) as live:
        yield live
