"""Admin: background training through the real pipeline and MLflow registry, hot reload."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from recstack.serving.api.app import create_app
from recstack.settings import Settings
from recstack.store import Store


@pytest.fixture
def live(tmp_path, planted, fill):
    """An app that loads everything itself at startup (store + registry), as in production."""
    settings = Settings(home=tmp_path / "home", rate_limit_per_minute=100_000)
    settings.ensure_home()
    store = Store.from_settings(settings)
    fill(store, planted)
    admin = {"Authorization": f"Bearer {store.create_api_key('admin', 'ops')[0]}"}
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, admin, store
    store.close()


def wait_for(client, headers, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/admin/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def train(client, headers, **body) -> dict:
    response = client.post("/v1/admin/train", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running")
    job = wait_for(client, headers, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    return job


def test_train_promote_reload_and_hot_swap_under_load(live):
    client, admin, store = live
    # nothing registered yet: popularity from the store, and /readyz says so
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "no model registered" in ready.json()["reasons"][0]
    assert (
        client.get("/v1/users/u1/recommendations", headers=admin).json()["model"]["name"]
        == "popularity"
    )

    bad = client.post("/v1/admin/train", json={"model": "nope"}, headers=admin)
    assert bad.status_code == 422 and "nope" in bad.json()["error"]["message"]
    bad = client.post(
        "/v1/admin/train", json={"model": "als", "params": {"fctors": 3}}, headers=admin
    )
    assert bad.status_code == 422 and "fctors" in bad.json()["error"]["message"]

    job = train(client, admin, model="popularity", evaluate=False, promote="champion")
    assert job["result"]["version"] == 1 and "champion" in job["result"]["aliases"]
    reloaded = client.post("/v1/admin/reload", headers=admin).json()
    assert reloaded["model"] == {"name": "popularity", "version": 1, "registered_name": "recstack"}
    assert reloaded["previous"]["name"] == "popularity" and reloaded["previous"]["version"] is None
    assert client.get("/readyz").status_code == 200

    params = {"factors": 4, "iterations": 5, "random_state": 0}
    train(client, admin, model="als", params=params, evaluate=False, promote="champion")
    models = client.get("/v1/admin/models", headers=admin).json()
    assert [(v["version"], v["loaded"]) for v in models["versions"]] == [(1, True), (2, False)]

    failures: list[tuple[str, int]] = []
    done = [0, 0, 0, 0]  # requests answered per thread
    stop = threading.Event()

    def hammer(n: int) -> None:
        paths = [
            f"/v1/users/u{n}/recommendations?k=5",
            "/v1/popular?k=5",
            f"/v1/items/i{n}/similar?k=3",
        ]
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            status = client.get(path, headers=admin).status_code
            if status != 200:
                failures.append((path, status))
            if i % 7 == 0:
                event = {"user_id": f"u{n}", "item_id": f"i{i % 120}"}
                status = client.post("/v1/events", json=event, headers=admin).status_code
                if status != 200:
                    failures.append(("/v1/events", status))
            i += 1
            done[n] = i

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()

    def all_past(counts: list[int], extra: int) -> None:
        deadline = time.monotonic() + 60
        while (
            any(d < c + extra for d, c in zip(done, counts, strict=True))
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)

    try:
        all_past([0] * 4, 3)  # traffic is flowing before the swap...
        before = list(done)
        swapped = client.post("/v1/admin/reload", headers=admin)
        again = client.post("/v1/admin/reload", headers=admin)
        all_past(before, 3)  # ...and every client kept being answered across it
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert swapped.status_code == 200 and again.status_code == 200
    assert swapped.json()["model"] == {"name": "als", "version": 2, "registered_name": "recstack"}
    assert failures == []
    assert all(d >= b + 3 for d, b in zip(done, before, strict=True))
    body = client.get("/v1/users/u1/recommendations?k=5", headers=admin).json()
    assert body["model"]["version"] == 2 and len(body["items"]) == 5
    # events posted during the swaps are in the new engine (it re-reads users changed meanwhile)
    stored = set(store.user_history("u1")["item_id"])
    assert not stored & {i["item_id"] for i in body["items"]}
    assert client.get("/v1/admin/jobs/unknown", headers=admin).status_code == 404
