"""``recstack spark score --into-store``: score on Spark, store the lists, serve them over HTTP."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.testing.data import planted_frame

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def canonical_dir(tmp_path_factory) -> Path:
    inter, _ = planted_frame()
    root = tmp_path_factory.mktemp("canonical")
    inter.to_parquet(root / "part-0.parquet", index=False)
    return root


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_score_into_store_then_serve_the_lists(
    spark, serve, planted, canonical_dir, tmp_path, monkeypatch
):
    inter, items = planted
    from recstack.data.dataset import Dataset

    model = create_model("als", factors=4, iterations=10, random_state=0)
    model.fit(Dataset.from_frame(inter, items=items))
    with serve(model) as served:
        settings = served.settings
        version = ModelRegistry(settings).log_model(model)
        ModelRegistry(settings).set_alias(settings.model_name, "champion", version.version)
        for var in ("RECSTACK_MLFLOW_TRACKING_URI", "RECSTACK_CONFIG"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("RECSTACK_HOME", str(settings.home))
        monkeypatch.setenv("RECSTACK_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("RECSTACK_MODEL_NAME", settings.model_name)
        out = tmp_path / "scores"
        args = ["spark", "score", str(canonical_dir), "--out", str(out), "-k", "5", "--into-store"]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"stored list set '{settings.model_name}'" in result.output

        info = served.store.precomputed.get(settings.model_name)
        assert info is not None and (info.n_users, info.n_rows, info.k) == (200, 1000, 5)
        assert info.source["registered_name"] == settings.model_name
        assert info.source["version"] == version.version and info.source["job"] == "score"

        admin = served.headers("admin")
        ref = f"precomputed:{settings.model_name}"
        put = served.client.put("/v1/admin/slots/batch", json={"ref": ref}, headers=admin)
        assert put.status_code == 200, put.text
        scores = pd.read_parquet(out)
        user = "u7"
        stored = scores[scores["user_id"] == user].sort_values("rank")
        path = f"/v1/users/{user}/recommendations"
        body = served.client.get(path, params={"k": 5, "slot": "batch"}, headers=admin).json()
        assert ids(body) == stored["item_id"].tolist()
        assert [round(i["score"], 4) for i in body["items"]] == [
            round(float(s), 4) for s in stored["score"]
        ]
        assert body["model"]["name"] == "precomputed" and body["cold_start"] is False

        event = {"user_id": user, "item_id": ids(body)[0], "event_type": "view"}
        posted = served.client.post("/v1/events", json=event, headers=served.headers("write"))
        assert posted.status_code == 200, posted.text
        after = served.client.get(path, params={"k": 5, "slot": "batch"}, headers=admin).json()
        assert ids(after) == ids(body)[1:]  # the rest of the stored list, nothing else

        missing = served.client.put(
            "/v1/admin/slots/other", json={"ref": "precomputed:absent"}, headers=admin
        )
        assert missing.status_code == 404 and "no precomputed list set 'absent'" in missing.text
