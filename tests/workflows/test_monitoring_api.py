"""The monitoring admin routes' refusals: each a clear 4xx, and nothing started or written."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recstack.serving.api.app import create_app
from recstack.settings import Settings
from recstack.store import Store
from recstack.store import jobs as locks


def test_admin_routes_refuse_clearly(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_home()
    store = Store.from_settings(settings)
    admin = {"Authorization": f"Bearer {store.create_api_key('admin', 'ops')[0]}"}
    read = {"Authorization": f"Bearer {store.create_api_key('read', 'app')[0]}"}
    with TestClient(create_app(settings, store=store)) as client:
        assert client.post("/v1/admin/retrain", headers=read).status_code == 403

        bad = client.post("/v1/admin/drift", json={"config": {"share": 2}}, headers=admin)
        assert bad.status_code == 422 and "share" in bad.json()["error"]["message"]
        bad = client.post("/v1/admin/retrain", json={"config": {"margn": 0.1}}, headers=admin)
        assert bad.status_code == 422 and "margn" in bad.json()["error"]["message"]

        none = client.post("/v1/admin/drift", headers=admin)
        assert none.status_code == 404 and "no champion" in none.json()["error"]["message"]
        none = client.post("/v1/admin/retrain", json={}, headers=admin)
        assert none.status_code == 404 and "train one first" in none.json()["error"]["message"]
        assert client.post("/v1/admin/rollback", headers=admin).status_code == 404

        assert locks.acquire_lock(store.engine, "retrain", "another-host:1", 60)
        busy = client.post("/v1/admin/retrain", json={"reason": "drift"}, headers=admin)
        assert busy.status_code == 409
        assert "a retrain is already running" in busy.json()["error"]["message"]
        assert "another-host:1" in busy.json()["error"]["message"]
        locks.release_lock(store.engine, "retrain", "another-host:1")

        assert client.get("/v1/admin/drift", headers=admin).json() == {"reports": []}
        assert client.get("/v1/admin/decisions", headers=admin).json() == {"decisions": []}
        missing = client.get("/v1/admin/drift/abc", headers=admin)
        assert missing.status_code == 404 and "abc" in missing.json()["error"]["message"]
        assert client.get("/v1/admin/cards/1", headers=admin).status_code == 404
    assert not (settings.home / "mlflow.db").exists()  # no registry was created on the way
    store.close()
